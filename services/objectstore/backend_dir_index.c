/* backend_dir_index.c - the directory backend's index: each key's latest version (its
 * head, index/<bucket>/<name>.json), its noncurrent versions
 * (versions/<bucket>/<name>/<sort key>.json), how a change to them is applied, and the
 * listings.
 *
 * A change (os_vplan) is applied under the backend's mutex after checking that the head
 * and the noncurrent files it replaces are still what was loaded. Its steps are ordered
 * so that the rename of the head is the moment the change happens, and a crash before or
 * after it leaves only files that readers ignore:
 *   1. a demoted head is written as noncurrent first: a copy whose sort key equals the
 *      head's is a leftover (the head is still that version), never shown;
 *   2. the head is renamed into place (or removed);
 *   3. noncurrent files are removed: a null version that is not the one the head points
 *      to ("nullsk") is a leftover of a replaced null version, never shown.
 * So the head alone says which versions exist, as the RADOS backend's single op does. */
#include "backend_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"

/* ---- names ---- */

/* A key's file name without ".json": its head is <base>.json, its versions <base>/. */
static void key_base(const char *key, char out[NAME_BUF])
{
    dir_key_name(key, out);
    out[strlen(out) - 5] = '\0';
}

static char *versions_dir(dir_impl_t *d, const char *bucket, const char *base)
{
    return xasprintf("%s/versions/%s/%s", d->root, bucket, base);
}

static char *nc_path(dir_impl_t *d, const char *bucket, const char *base, const char *sk)
{
    return xasprintf("%s/versions/%s/%s/%s.json", d->root, bucket, base, sk);
}

/* The sort keys of a key's noncurrent files, newest first (sorted names). */
static size_t nc_names(dir_impl_t *d, const char *bucket, const char *base, char (**out)[OS_SK_LEN + 1])
{
    char *dirp = versions_dir(d, bucket, base);
    DIR *dh = opendir(dirp);
    free(dirp);
    size_t n = 0, cap = 8;
    *out = xmalloc(cap * sizeof **out);
    struct dirent *de;
    while (dh && (de = readdir(dh))) {
        size_t len = strlen(de->d_name);
        if (len != OS_SK_LEN + 5 || strcmp(de->d_name + OS_SK_LEN, ".json"))
            continue;   /* "." and "..", nothing else is ours */
        if (n == cap)
            *out = xrealloc(*out, (cap *= 2) * sizeof **out);
        memcpy((*out)[n], de->d_name, OS_SK_LEN);
        (*out)[n++][OS_SK_LEN] = '\0';
    }
    if (dh)
        closedir(dh);
    qsort(*out, n, sizeof **out, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* ---- loading ---- */

/* A record file as raw bytes and entry; absent is not an error. */
static int read_rec(const char *path, os_krec_t *rec, verr_t *e)
{
    int rc = dir_read_file(path, &rec->raw, &rec->rawlen);
    if (rc == -ENOENT) {
        rec->raw = NULL;
        return 0;
    }
    if (rc)
        return dir_io_error(e, "read", path, -rc);
    if (!(rec->ent = os_json_parse(rec->raw, rec->rawlen, path, e))) {
        free(rec->raw);
        rec->raw = NULL;
        return -1;
    }
    return 0;
}

static void rec_clear(os_krec_t *rec)
{
    free(rec->raw);
    json_decref(rec->ent);
    rec->raw = NULL, rec->rawlen = 0, rec->ent = NULL;
}

/* Is a noncurrent file one of the key's versions, or a crash leftover (see the top)? */
static int nc_valid(const json_t *head, const char *sk, const json_t *ent)
{
    char hsk[OS_SK_LEN + 1];
    if (!head)
        return 0;
    os_entry_sk(head, hsk);
    if (!strcmp(sk, hsk))
        return 0;
    const char *nullsk = json_str(head, "nullsk", NULL);
    return !os_entry_is_null(ent) || (nullsk && !strcmp(nullsk, sk));
}

static int load_nc(dir_impl_t *d, const char *bucket, const char *base, const json_t *head, const char *sk,
                   os_krec_t *rec, verr_t *e)
{
    snprintf(rec->sk, sizeof rec->sk, "%s", sk);
    char *path = nc_path(d, bucket, base, sk);
    int rc = read_rec(path, rec, e);
    free(path);
    if (!rc && rec->ent && !nc_valid(head, sk, rec->ent))
        rec_clear(rec);
    return rc;
}

static int load_next(dir_impl_t *d, const char *bucket, const char *base, const json_t *head, os_krec_t *rec,
                     verr_t *e)
{
    char (*names)[OS_SK_LEN + 1];
    size_t n = nc_names(d, bucket, base, &names);
    int rc = 0;
    for (size_t i = 0; i < n && !rc && !rec->raw; i++)
        rc = load_nc(d, bucket, base, head, names[i], rec, e);
    if (!rec->raw)
        rec->sk[0] = '\0';
    free(names);
    return rc;
}

int dir_kload(os_backend_t *b, const char *bucket, const char *key, const os_kwant_t *w, os_kstate_t *st,
              verr_t *e)
{
    dir_impl_t *d = D(b);
    char base[NAME_BUF];
    key_base(key, base);
    os_kstate_clear(st);
    char *path = dir_index_path(d, bucket, key);
    int rc = read_rec(path, &st->head, e);
    free(path);
    if (rc)
        return -1;
    if (!st->head.raw && !dir_bucket_exists(d, bucket))
        return os_err_nosuchbucket(e, bucket);
    st->nnc = w->nsk;
    for (size_t i = 0; i < w->nsk && !rc; i++)
        rc = load_nc(d, bucket, base, st->head.ent, w->sk[i], &st->nc[i], e);
    st->has_next = w->next;
    if (!rc && w->next && st->head.ent)
        rc = load_next(d, bucket, base, st->head.ent, &st->next, e);
    return rc ? -1 : 0;
}

/* ---- changing ---- */

typedef struct prepared {
    char *head_tmp, *put_tmp;   /* written and fsync'd, renamed into place by apply */
} prepared_t;

static int prepare(dir_impl_t *d, const char *key, const os_vplan_t *pl, prepared_t *pr, verr_t *e)
{
    memset(pr, 0, sizeof *pr);
    int rc = 0;
    if (pl->head_op == OS_HEAD_SET) {
        /* The key goes in the head: a long key's file name does not give it back. */
        json_t *h = json_copy(pl->head);
        size_t n = strlen(key);
        char *hex = xmalloc(2 * n + 1);
        os_hex_encode(key, n, hex);
        json_object_set_new(h, "k", json_string(hex));
        free(hex);
        rc = dir_tmp_record(d, h, 1, &pr->head_tmp);
        json_decref(h);
    }
    if (!rc && pl->put)
        rc = dir_tmp_record(d, pl->put, 1, &pr->put_tmp);
    return rc ? dir_io_error(e, "write", "index record", -rc) : 0;
}

static void prepared_drop(prepared_t *pr)
{
    char *t[2] = {pr->head_tmp, pr->put_tmp};
    for (int i = 0; i < 2; i++)
        if (t[i]) {
            unlink(t[i]);
            free(t[i]);
        }
    memset(pr, 0, sizeof *pr);
}

/* The lock is held. */
static int apply(dir_impl_t *d, const char *bucket, const char *key, const os_vplan_t *pl, prepared_t *pr,
                 verr_t *e)
{
    char base[NAME_BUF];
    key_base(key, base);
    if (!dir_bucket_exists(d, bucket))
        return os_err_nosuchbucket(e, bucket);
    int rc = 0;
    if (pl->put) {   /* 1. */
        char *top = xasprintf("%s/versions/%s", d->root, bucket), *dirp = versions_dir(d, bucket, base);
        char *path = nc_path(d, bucket, base, pl->put_sk);
        if ((rc = dir_mkdir_ok(top)) || (rc = dir_mkdir_ok(dirp)))
            rc = dir_io_error(e, "mkdir", dirp, -rc);
        else if (rename(pr->put_tmp, path) < 0)
            rc = dir_io_error(e, "rename", path, errno);
        else {
            free(pr->put_tmp);
            pr->put_tmp = NULL;
        }
        free(top);
        free(dirp);
        free(path);
    }
    char *head = dir_index_path(d, bucket, key);
    if (!rc && pl->head_op == OS_HEAD_SET) {   /* 2. */
        if (rename(pr->head_tmp, head) < 0)
            rc = errno == ENOENT ? os_err_nosuchbucket(e, bucket) : dir_io_error(e, "rename", head, errno);
        else {
            free(pr->head_tmp);
            pr->head_tmp = NULL;
        }
    } else if (!rc && pl->head_op == OS_HEAD_REMOVE && unlink(head) < 0 && errno != ENOENT)
        rc = dir_io_error(e, "unlink", head, errno);
    free(head);
    if (rc)
        return -1;
    if (pl->rm_sk[0]) {   /* 3. */
        char *path = nc_path(d, bucket, base, pl->rm_sk);
        if (unlink(path) < 0 && errno != ENOENT)
            log_warn("objectstore dir: unlink %s: %s (a leftover now)", path, strerror(errno));
        free(path);
    }
    size_t i;
    json_t *g;
    json_array_foreach(pl->garbage, i, g)
        dir_add_garbage(d, bucket, g);
    if (pl->rm_sk[0] || pl->head_op == OS_HEAD_REMOVE) {
        char *dirp = versions_dir(d, bucket, base);
        rmdir(dirp);   /* fails while versions remain */
        free(dirp);
    }
    return 0;
}

int dir_kapply_locked(dir_impl_t *d, const char *bucket, const char *key, const os_vplan_t *pl, verr_t *e)
{
    prepared_t pr;
    int rc = prepare(d, key, pl, &pr, e);
    if (!rc)
        rc = apply(d, bucket, key, pl, &pr, e);
    prepared_drop(&pr);
    return rc;
}

static int same_raw(const os_krec_t *a, const os_krec_t *b)
{
    if (!a->raw || !b->raw)
        return !a->raw && !b->raw;
    return a->rawlen == b->rawlen && !memcmp(a->raw, b->raw, a->rawlen);
}

/* Are the records pl replaces still what st loaded? (lock held) */
static int unchanged(dir_impl_t *d, const char *bucket, const char *key, const os_kstate_t *st,
                     const os_vplan_t *pl, verr_t *e)
{
    char base[NAME_BUF];
    key_base(key, base);
    os_krec_t now = {0};
    char *path = dir_index_path(d, bucket, key);
    int rc = read_rec(path, &now, e);
    free(path);
    int same = rc == 0 && same_raw(&now, &st->head);
    const char *sks[2] = {pl->put ? pl->put_sk : NULL, pl->rm_sk[0] ? pl->rm_sk : NULL};
    for (int i = 0; i < 2 && same; i++) {
        const os_krec_t *was = sks[i] ? os_kstate_find(st, sks[i]) : NULL;
        os_krec_t nc = {0};
        if (was && load_nc(d, bucket, base, now.ent, sks[i], &nc, e) == 0)
            same = same_raw(&nc, was);
        else if (was)
            rc = -1;
        rec_clear(&nc);
    }
    rec_clear(&now);
    return rc ? -1 : same;
}

int dir_kapply(os_backend_t *b, const char *bucket, const char *key, const os_kstate_t *st, const os_vplan_t *pl,
               os_put_t *p, verr_t *e)
{
    (void)p;   /* the write's data file is in place already (finish_data) */
    dir_impl_t *d = D(b);
    prepared_t pr;
    if (prepare(d, key, pl, &pr, e))
        return -1;
    pthread_mutex_lock(&d->lock);
    int rc = unchanged(d, bucket, key, st, pl, e);
    rc = rc < 0 ? -1 : rc == 0 ? 1 : apply(d, bucket, key, pl, &pr, e);
    pthread_mutex_unlock(&d->lock);
    prepared_drop(&pr);
    return rc;
}

void dir_key_entries(dir_impl_t *d, const char *bucket, const char *key, void (*fn)(void *arg, const json_t *ent),
                     void *arg)
{
    char base[NAME_BUF], (*names)[OS_SK_LEN + 1];
    key_base(key, base);
    char *path = dir_index_path(d, bucket, key);
    json_t *ent = NULL;
    if (dir_get_record(path, &ent, NULL) == 0)
        fn(arg, ent);
    json_decref(ent);
    free(path);
    size_t n = nc_names(d, bucket, base, &names);
    for (size_t i = 0; i < n; i++) {
        ent = NULL;
        path = nc_path(d, bucket, base, names[i]);
        if (dir_get_record(path, &ent, NULL) == 0)
            fn(arg, ent);
        json_decref(ent);
        free(path);
    }
    free(names);
}

static void drop_key_dir(void *arg, const char *path, const char *name)
{
    (void)arg, (void)name;
    dir_remove_tree(path);
}

void dir_versions_drop(dir_impl_t *d, const char *bucket)
{
    char *top = xasprintf("%s/versions/%s", d->root, bucket);
    DIR *dh = opendir(top);
    struct dirent *de;
    while (dh && (de = readdir(dh)))
        if (de->d_name[0] != '.') {
            char *p = xasprintf("%s/%s", top, de->d_name);
            drop_key_dir(NULL, p, de->d_name);
            free(p);
        }
    if (dh)
        closedir(dh);
    rmdir(top);
    free(top);
}

/* ---- listing ---- */

typedef struct list_row {
    char *key;
    size_t klen;
    char *name;
} list_row_t;

static int cmp_row(const void *a, const void *b)
{
    const list_row_t *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* The key a file name stands for (read from the entry for long keys). */
static int name_key(const char *dirpath, const char *name, list_row_t *r)
{
    size_t n = strlen(name);
    if (n < 5 || strcmp(name + n - 5, ".json") != 0)
        return -1;
    if (!memchr(name, '~', n)) {
        r->key = xmalloc((n - 5) / 2 + 1);
        if (os_hex_decode(name, n - 5, r->key, (n - 5) / 2 + 1, &r->klen) == 0)
            return 0;
    } else {
        char *path = xasprintf("%s/%s", dirpath, name);
        json_t *rec = NULL;
        int rc = dir_get_record(path, &rec, NULL);
        const char *hex = rc ? "" : json_str(rec, "k", "");
        r->key = xmalloc(strlen(hex) / 2 + 1);
        rc = rc || !*hex || os_hex_decode(hex, strlen(hex), r->key, strlen(hex) / 2 + 1, &r->klen);
        json_decref(rec);
        free(path);
        if (!rc)
            return 0;
    }
    free(r->key);
    return -1;
}

static int keep_row(const list_row_t *r, const char *prefix, const char *after, int inclusive)
{
    size_t plen = strlen(prefix), alen = strlen(after);
    if (r->klen < plen || memcmp(r->key, prefix, plen) != 0)
        return 0;
    list_row_t a = {(char *)after, alen, NULL};
    int c = cmp_row(r, &a);
    return inclusive ? c >= 0 : c > 0;
}

/* Matching keys of the bucket, sorted: after `after`, or from it when inclusive. -1
 * with e set when the bucket is missing. */
static int scan_index(dir_impl_t *d, const char *bucket, const char *prefix, const char *after, int inclusive,
                      list_row_t **out, size_t *count, char **dirpath, verr_t *e)
{
    *dirpath = xasprintf("%s/index/%s", d->root, bucket);
    DIR *dh = opendir(*dirpath);
    if (!dh)
        return errno == ENOENT ? os_err_nosuchbucket(e, bucket) : dir_io_error(e, "opendir", *dirpath, errno);
    size_t n = 0, cap = 64;
    list_row_t *rows = xmalloc(cap * sizeof *rows);
    struct dirent *de;
    while ((de = readdir(dh))) {
        list_row_t r = {NULL, 0, NULL};
        if (de->d_name[0] == '.' || name_key(*dirpath, de->d_name, &r))
            continue;
        if (!keep_row(&r, prefix, after, inclusive)) {
            free(r.key);
            continue;
        }
        if (n == cap)
            rows = xrealloc(rows, (cap *= 2) * sizeof *rows);
        r.name = xstrdup(de->d_name);
        rows[n++] = r;
    }
    closedir(dh);
    qsort(rows, n, sizeof *rows, cmp_row);
    *out = rows;
    *count = n;
    return 0;
}

static void rows_free(list_row_t *rows, size_t n, char *dirpath)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].key);
        free(rows[i].name);
    }
    free(rows);
    free(dirpath);
}

int dir_list(os_backend_t *b, const char *bucket, const char *prefix, const char *start_after, size_t max,
             os_list_fn fn, void *arg, int *truncated, verr_t *e)
{
    list_row_t *rows = NULL;
    size_t n = 0, emitted = 0;
    char *dirpath;
    int rc = scan_index(D(b), bucket, prefix, start_after, 0, &rows, &n, &dirpath, e);
    for (size_t i = 0; i < n && !rc; i++) {
        char *path = xasprintf("%s/%s", dirpath, rows[i].name);
        json_t *rec = NULL;
        int got = dir_get_record(path, &rec, e);
        free(path);
        if (got == -ENOENT || (!got && os_entry_is_dm(rec))) {
            json_decref(rec);
            continue;   /* deleted since the scan, or its latest version is a delete marker */
        }
        if (got)
            rc = -1;
        else if (emitted == max)
            *truncated = 1;
        else {
            rc = os_list_emit(fn, arg, rows[i].key, rec, 1, e);
            emitted++;
        }
        json_decref(rec);
        if (*truncated)
            break;
    }
    rows_free(rows, n, dirpath);
    return rc;
}

int dir_list_versions(os_backend_t *b, const char *bucket, const char *prefix, const char *after_key,
                      const char *after_sk, size_t max, os_list_fn fn, void *arg, int *truncated, verr_t *e)
{
    dir_impl_t *d = D(b);
    list_row_t *rows = NULL;
    size_t n = 0, count = 0;
    char *dirpath;
    int rc = scan_index(d, bucket, prefix, after_key, after_sk != NULL, &rows, &n, &dirpath, e);
    for (size_t i = 0; i < n && !rc && !*truncated; i++) {
        os_krec_t head = {0};
        char *path = xasprintf("%s/%s", dirpath, rows[i].name), base[NAME_BUF];
        rc = read_rec(path, &head, e);
        free(path);
        if (rc || !head.ent)
            continue;   /* deleted since the scan */
        /* Resuming inside after_key: its head and the versions up to after_sk are done. */
        int resume = after_sk && rows[i].klen == strlen(after_key) && !memcmp(rows[i].key, after_key, rows[i].klen);
        if (!resume) {
            if (count == max)
                *truncated = 1;
            else {
                rc = os_list_emit(fn, arg, rows[i].key, head.ent, 1, e);
                count++;
            }
        }
        snprintf(base, sizeof base, "%.*s", (int)(strlen(rows[i].name) - 5), rows[i].name);
        char (*names)[OS_SK_LEN + 1];
        size_t nn = nc_names(d, bucket, base, &names);
        for (size_t j = 0; j < nn && !rc && !*truncated; j++) {
            if (resume && after_sk[0] && strcmp(names[j], after_sk) <= 0)
                continue;
            os_krec_t nc = {0};
            rc = load_nc(d, bucket, base, head.ent, names[j], &nc, e);
            if (!rc && nc.ent) {
                if (count == max)
                    *truncated = 1;
                else {
                    rc = os_list_emit(fn, arg, rows[i].key, nc.ent, 0, e);
                    count++;
                }
            }
            rec_clear(&nc);
        }
        free(names);
        rec_clear(&head);
    }
    rows_free(rows, n, dirpath);
    return rc ? -1 : 0;
}
