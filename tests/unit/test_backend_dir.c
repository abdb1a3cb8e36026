/* test_backend_dir.c - the object store's storage layer (services/objectstore/backend.h)
 * on the directory backend, in a mkdtemp directory removed at the end.
 *
 * The scenarios only use backend.h, so tests/objectstore/test_backend_rados.c runs the
 * very same ones against a Ceph cluster: it defines OS_TEST_EXTERNAL_SETUP (its own
 * test_open / test_close / count_data) and OS_TEST_NO_MAIN, then includes this file.
 * Covered: byte-exact round trips (empty, small, 10 MiB in odd chunks), MD5 ETags,
 * atomic overwrite (old object visible until commit, a read finishes on the version it
 * started), abort, delete, listing order and paging with awkward keys, ranges,
 * multipart (content, the S3 ETag formula computed here independently, InvalidPart,
 * InvalidPartOrder, EntityTooSmall, abort, part and upload lists, concurrent parts),
 * bucket deletion rules, gc grace / stale handling, concurrent overwrites leaving no
 * leaked data, and checksums (os_checksum_scenarios.c); S3 versioning in
 * backend_scenarios_versions.c; the ACL each version keeps in backend_scenarios_acl.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "config.h"
#include "jsonutil.h"

#define MiB (1024u * 1024u)

static os_backend_t *B;
static verr_t E;

/* ---- backend under test ---- */

static void md5_hex(const void *data, size_t n, char hex[33]);

#ifndef OS_TEST_EXTERNAL_SETUP
static char tmpdir[] = "/tmp/virga-backend-dir-XXXXXX";
static config_t *cfg;

static os_backend_t *test_open(void)
{
    if (!mkdtemp(tmpdir))
        return NULL;
    cfg = config_new();
    config_set(cfg, "objectstore.backend", "dir");
    config_set(cfg, "objectstore.dir.path", tmpdir);
    return os_backend_open(cfg, &E);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void test_close(void)
{
    os_backend_close(B);
    config_free(cfg);
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* An object as the directory backend wrote it before versioning existed. */
static void write_old_entry(const char *bucket, const char *key, const char *data)
{
    static const char v[] = "0123456789abcdef0123abcd";
    char path[512], hex[256], etag[33];
    size_t n = strlen(key);
    for (size_t i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", (unsigned char)key[i]);
    md5_hex(data, strlen(data), etag);
    snprintf(path, sizeof path, "%s/data/%s/%s", tmpdir, bucket, v);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/index/%s/%s.json", tmpdir, bucket, hex);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"ct\":\"text/plain\",\"size\":%zu,\"etag\":\"%s\",\"mtime\":1700000000,\"v\":\"%s\",\"k\":\"%s\"}",
            strlen(data), etag, v, hex);
    fclose(f);
}

/* Data files (committed or in progress) of a bucket: what gc must eventually remove. */
static int count_data(const char *bucket)
{
    char path[512];
    snprintf(path, sizeof path, "%s/data/%s", tmpdir, bucket);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}
#endif

/* ---- helpers ---- */

#define OK(call)                                                                             \
    do {                                                                                     \
        memset(&E, 0, sizeof E);                                                             \
        int ok_rc_ = (call);                                                                 \
        if (ok_rc_ != 0)                                                                     \
            print_error("%s failed: %s %d %s\n", #call, E.code, E.http_status, E.message);   \
        assert_int_equal(ok_rc_, 0);                                                         \
    } while (0)

#define FAILS(call, code_)                                                                   \
    do {                                                                                     \
        memset(&E, 0, sizeof E);                                                             \
        assert_int_equal((call), -1);                                                        \
        assert_string_equal(E.code, code_);                                                  \
    } while (0)

/* Deterministic bytes, different per seed. */
static void pattern(unsigned char *buf, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

static void md5_hex(const void *data, size_t n, char hex[33])
{
    unsigned char d[16];
    unsigned int len = 0;
    EVP_Digest(data, n, d, &len, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++)
        sprintf(hex + 2 * i, "%02x", d[i]);
}

static void new_bucket(const char *bucket)
{
    OK(os_bucket_create(B, bucket, &E));
}

/* Write in chunks of `chunk` bytes (odd sizes exercise the buffering). */
static void put_chunked(const char *bucket, const char *key, const void *data, size_t n, size_t chunk,
                        os_meta_t *meta)
{
    os_put_t *p;
    OK(os_put_begin(B, bucket, key, OS_VERSIONING_OFF, &p, &E));
    for (size_t off = 0; off < n; off += chunk)
        OK(os_put_write(p, (const char *)data + off, n - off < chunk ? n - off : chunk, &E));
    OK(os_put_commit(p, meta, &E));
}

static void put_str(const char *bucket, const char *key, const char *s)
{
    os_meta_t m = {0};
    put_chunked(bucket, key, s, strlen(s), 1 << 20, &m);
    os_meta_clear(&m);
}

typedef struct sinkbuf {
    unsigned char *data;
    size_t len, cap;
    int calls;
    void (*hook)(struct sinkbuf *);   /* run once, at the first piece */
} sinkbuf_t;

static int to_buf(void *arg, const void *data, size_t len)
{
    sinkbuf_t *s = arg;
    if (s->calls++ == 0 && s->hook)
        s->hook(s);
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2;
        s->data = realloc(s->data, s->cap);
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

static sinkbuf_t get_range(const char *bucket, const char *key, uint64_t off, uint64_t len)
{
    sinkbuf_t s = {0};
    OK(os_read(B, bucket, key, off, len, to_buf, &s, NULL, &E));
    return s;
}

static void assert_content(const char *bucket, const char *key, const void *want, size_t n)
{
    sinkbuf_t s = get_range(bucket, key, 0, n);
    assert_int_equal(s.len, n);
    if (n)
        assert_memory_equal(s.data, want, n);
    free(s.data);
}

/* ---- round trips ---- */

static void test_roundtrip(void **state)
{
    (void)state;
    new_bucket("rt");
    os_meta_t m = {0};
    char hex[33];

    /* empty object */
    put_chunked("rt", "empty", "", 0, 1, &m);
    assert_int_equal(m.size, 0);
    assert_string_equal(m.etag, "d41d8cd98f00b204e9800998ecf8427e");
    assert_content("rt", "empty", "", 0);
    os_meta_clear(&m);

    /* small, with metadata */
    snprintf(m.content_type, sizeof m.content_type, "text/plain");
    m.user_meta = json_pack("{s:s}", "x-amz-meta-colour", "blue");
    m.extra = json_pack("{s:s}", "Cache-Control", "no-cache");
    put_chunked("rt", "hello.txt", "hello world", 11, 3, &m);
    md5_hex("hello world", 11, hex);
    assert_string_equal(m.etag, hex);
    os_meta_clear(&m);
    OK(os_head(B, "rt", "hello.txt", &m, &E));
    assert_int_equal(m.size, 11);
    assert_string_equal(m.etag, hex);
    assert_string_equal(m.content_type, "text/plain");
    assert_string_equal(json_string_value(json_object_get(m.user_meta, "x-amz-meta-colour")), "blue");
    assert_string_equal(json_string_value(json_object_get(m.extra, "Cache-Control")), "no-cache");
    assert_true(m.mtime > 0);
    os_meta_clear(&m);
    assert_content("rt", "hello.txt", "hello world", 11);

    /* 10 MiB in odd-sized chunks, then read back with meta from the same version */
    size_t n = 10 * MiB;
    unsigned char *big = malloc(n);
    pattern(big, n, 1);
    put_chunked("rt", "big", big, n, 7777, &m);
    md5_hex(big, n, hex);
    assert_string_equal(m.etag, hex);
    os_meta_clear(&m);
    sinkbuf_t s = {0};
    OK(os_read(B, "rt", "big", 0, n, to_buf, &s, &m, &E));
    assert_int_equal(s.len, n);
    assert_memory_equal(s.data, big, n);
    assert_int_equal(m.size, n);
    assert_string_equal(m.etag, hex);
    os_meta_clear(&m);
    free(s.data);
    free(big);

    FAILS(os_head(B, "rt", "nope", &m, &E), "NoSuchKey");
    assert_int_equal(E.http_status, 404);
    assert_string_equal(E.message, "The specified key does not exist.");
    FAILS(os_head(B, "no-such-bucket", "k", &m, &E), "NoSuchBucket");
}

/* ---- overwrite, abort, delete ---- */

static void test_overwrite_atomic(void **state)
{
    (void)state;
    new_bucket("ow");
    put_str("ow", "k", "old contents");
    os_put_t *p;
    os_meta_t m = {0};
    OK(os_put_begin(B, "ow", "k", OS_VERSIONING_OFF, &p, &E));
    OK(os_put_write(p, "new", 3, &E));
    /* not committed yet: everyone still sees the old object */
    OK(os_head(B, "ow", "k", &m, &E));
    assert_int_equal(m.size, 12);
    os_meta_clear(&m);
    assert_content("ow", "k", "old contents", 12);
    OK(os_put_commit(p, &m, &E));
    os_meta_clear(&m);
    OK(os_head(B, "ow", "k", &m, &E));
    assert_int_equal(m.size, 3);
    os_meta_clear(&m);
    assert_content("ow", "k", "new", 3);
}

/* An overwrite (and gc within grace) while a read is under way: the read finishes on the
 * version it started with. */
static unsigned char *ow_old;
static void overwrite_hook(sinkbuf_t *s)
{
    (void)s;
    put_str("owr", "k", "replacement");
    OK(os_backend_gc(B, 3600, 3600, &E));
}

static void test_read_during_overwrite(void **state)
{
    (void)state;
    new_bucket("owr");
    size_t n = 9 * MiB;
    ow_old = malloc(n);
    pattern(ow_old, n, 7);
    os_meta_t m = {0};
    put_chunked("owr", "k", ow_old, n, MiB, &m);
    os_meta_clear(&m);
    sinkbuf_t s = {.hook = overwrite_hook};
    OK(os_read(B, "owr", "k", 0, n, to_buf, &s, &m, &E));
    assert_true(s.calls > 1);
    assert_int_equal(s.len, n);
    assert_memory_equal(s.data, ow_old, n);
    assert_int_equal(m.size, n);
    os_meta_clear(&m);
    free(s.data);
    free(ow_old);
    assert_content("owr", "k", "replacement", 11);
}

static void test_abort_and_delete(void **state)
{
    (void)state;
    new_bucket("ab");
    os_put_t *p;
    os_meta_t m = {0};
    unsigned char *buf = malloc(6 * MiB);
    pattern(buf, 6 * MiB, 3);
    OK(os_put_begin(B, "ab", "gone", OS_VERSIONING_OFF, &p, &E));
    OK(os_put_write(p, buf, 6 * MiB, &E));
    os_put_abort(p);
    os_put_abort(NULL);
    free(buf);
    FAILS(os_head(B, "ab", "gone", &m, &E), "NoSuchKey");
    assert_int_equal(count_data("ab"), 0);

    put_str("ab", "d", "x");
    OK(os_delete(B, "ab", "d", NULL, OS_VERSIONING_OFF, NULL, &E));
    FAILS(os_head(B, "ab", "d", &m, &E), "NoSuchKey");
    OK(os_delete(B, "ab", "d", NULL, OS_VERSIONING_OFF, NULL, &E));          /* deleting twice is fine */
    OK(os_delete(B, "ab", "never", NULL, OS_VERSIONING_OFF, NULL, &E));
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("ab"), 0);
}

/* ---- listing ---- */

typedef struct listed {
    char *keys[64];
    int n;
} listed_t;

static int collect_key(void *arg, const char *key, const os_meta_t *m)
{
    listed_t *l = arg;
    assert_non_null(m);
    if (l->n < 64)
        l->keys[l->n++] = strdup(key);
    return 0;
}

static void listed_free(listed_t *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->keys[i]);
    l->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);   /* unsigned bytes, like S3 */
}

static void test_list(void **state)
{
    (void)state;
    new_bucket("ls");
    char longkey[301];
    memset(longkey, 'L', 300);
    longkey[300] = '\0';
    longkey[0] = 'a';
    const char *keys[] = {"a", "a/b", "a/b/c", "a b", "a%20b", "a/", "ab", "z", "\xc3\xa4", "\xe6\x97\xa5\xe6\x9c\xac",
                          "~tilde", "a+b", "A", "0", longkey, "a\x01" "ctl", "dir/sub/file.txt", "dir/x"};
    size_t n = sizeof keys / sizeof *keys;
    for (size_t i = 0; i < n; i++)
        put_str("ls", keys[i], keys[i]);
    const char *sorted[sizeof keys / sizeof *keys];
    memcpy(sorted, keys, sizeof keys);
    qsort(sorted, n, sizeof *sorted, cmp_str);

    listed_t l = {0};
    int trunc = -1;
    OK(os_list(B, "ls", "", "", 1000, collect_key, &l, &trunc, &E));
    assert_int_equal(trunc, 0);
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l.keys[i], sorted[i]);
    listed_free(&l);

    OK(os_list(B, "ls", "a/", "", 1000, collect_key, &l, &trunc, &E));
    assert_int_equal(l.n, 3);
    assert_string_equal(l.keys[0], "a/");
    assert_string_equal(l.keys[1], "a/b");
    assert_string_equal(l.keys[2], "a/b/c");
    listed_free(&l);

    OK(os_list(B, "ls", "a/", "a/b", 1000, collect_key, &l, &trunc, &E));
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], "a/b/c");
    listed_free(&l);

    OK(os_list(B, "ls", "dir/", "", 1, collect_key, &l, &trunc, &E));
    assert_int_equal(l.n, 1);
    assert_int_equal(trunc, 1);
    listed_free(&l);
    OK(os_list(B, "ls", "dir/", "", 2, collect_key, &l, &trunc, &E));
    assert_int_equal(trunc, 0);
    listed_free(&l);

    /* paging two at a time with start_after walks everything once, in order */
    char after[400] = "";
    size_t seen = 0;
    do {
        OK(os_list(B, "ls", "", after, 2, collect_key, &l, &trunc, &E));
        for (int i = 0; i < l.n; i++)
            assert_string_equal(l.keys[i], sorted[seen + (size_t)i]);
        seen += (size_t)l.n;
        if (l.n)
            snprintf(after, sizeof after, "%s", l.keys[l.n - 1]);
        listed_free(&l);
    } while (trunc);
    assert_int_equal(seen, n);

    OK(os_list(B, "ls", "nothing-here", "", 10, collect_key, &l, &trunc, &E));
    assert_int_equal(l.n, 0);
    assert_int_equal(trunc, 0);
    assert_content("ls", longkey, longkey, 300);
    FAILS(os_list(B, "no-such-bucket", "", "", 10, collect_key, &l, &trunc, &E), "NoSuchBucket");
}

/* ---- ranges ---- */

static void test_ranges(void **state)
{
    (void)state;
    new_bucket("rg");
    size_t n = 5 * MiB + 123;
    unsigned char *buf = malloc(n);
    pattern(buf, n, 11);
    os_meta_t m = {0};
    put_chunked("rg", "r", buf, n, 65536 + 1, &m);
    os_meta_clear(&m);
    const uint64_t ranges[][2] = {{0, 1}, {5, 100}, {n - 1, 1}, {MiB - 3, 10}, {4 * MiB - 7, MiB + 50},
                                  {123, n - 123}, {0, n}};
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        sinkbuf_t s = get_range("rg", "r", ranges[i][0], ranges[i][1]);
        assert_int_equal(s.len, ranges[i][1]);
        assert_memory_equal(s.data, buf + ranges[i][0], ranges[i][1]);
        free(s.data);
    }
    /* a range past the end (the object changed since the caller looked) is clamped */
    sinkbuf_t s = get_range("rg", "r", n - 10, 100);
    assert_int_equal(s.len, 10);
    free(s.data);
    free(buf);
}

/* ---- multipart ---- */

static void upload_part(const char *bucket, const char *id, int num, const void *data, size_t n, char etag[72])
{
    os_put_t *p;
    os_meta_t m = {0};
    OK(os_mpu_part_begin(B, bucket, id, num, &p, &E));
    for (size_t off = 0; off < n; off += 100000)
        OK(os_put_write(p, (const char *)data + off, n - off < 100000 ? n - off : 100000, &E));
    OK(os_mpu_part_commit(p, &m, &E));
    char hex[33];
    md5_hex(data, n, hex);
    assert_string_equal(m.etag, hex);
    assert_int_equal(m.size, n);
    snprintf(etag, 72, "%s", m.etag);
    os_meta_clear(&m);
}

typedef struct parts_seen {
    int num[16];
    uint64_t size[16];
    char ck[16][CK_B64_MAX];
    int n;
} parts_seen_t;

static int collect_part(void *arg, int number, const char *etag, uint64_t size, int64_t mtime, const char *checksum)
{
    parts_seen_t *s = arg;
    assert_int_equal(strlen(etag), 32);
    assert_true(mtime > 0);
    assert_non_null(checksum);   /* every part stores its upload's checksum */
    if (s->n < 16) {
        s->num[s->n] = number;
        snprintf(s->ck[s->n], CK_B64_MAX, "%s", checksum);
        s->size[s->n++] = size;
    }
    return 0;
}

typedef struct uploads_seen {
    char keys[8][64];
    char ids[8][96];
    int n;
} uploads_seen_t;

static int collect_upload(void *arg, const char *key, const char *id, int64_t initiated)
{
    uploads_seen_t *u = arg;
    assert_true(initiated > 0);
    if (u->n < 8) {
        snprintf(u->keys[u->n], 64, "%s", key);
        snprintf(u->ids[u->n++], 96, "%s", id);
    }
    return 0;
}

/* The S3 multipart ETag, computed from the part bytes. */
static void s3_multipart_etag(const unsigned char *const *data, const size_t *len, int n, char out[72])
{
    unsigned char digests[16 * 16], d[16];
    unsigned int dl;
    for (int i = 0; i < n; i++)
        EVP_Digest(data[i], len[i], digests + 16 * i, &dl, EVP_md5(), NULL);
    EVP_Digest(digests, 16 * (size_t)n, d, &dl, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
    sprintf(out + 32, "-%d", n);
}

static void test_multipart(void **state)
{
    (void)state;
    new_bucket("mp");
    char id[96];
    os_meta_t m = {0};
    snprintf(m.content_type, sizeof m.content_type, "application/x-test");
    m.user_meta = json_pack("{s:s}", "x-amz-meta-a", "1");
    OK(os_mpu_create(B, "mp", "big/object", &m, id, &E));
    os_meta_clear(&m);

    size_t len[3] = {5 * MiB, 5 * MiB, 1024};
    unsigned char *data[3];
    os_part_ref_t refs[3];
    for (int i = 0; i < 3; i++) {
        data[i] = malloc(len[i]);
        pattern(data[i], len[i], 100 + (uint32_t)i);
    }
    /* part 2 first with other bytes, then replaced */
    unsigned char junk[1000];
    pattern(junk, sizeof junk, 5);
    upload_part("mp", id, 2, junk, sizeof junk, refs[1].etag);
    for (int i = 0; i < 3; i++) {
        refs[i].number = i + 1;
        upload_part("mp", id, i + 1, data[i], len[i], refs[i].etag);
    }

    parts_seen_t ps = {0};
    OK(os_mpu_list_parts(B, "mp", id, NULL, collect_part, &ps, &E));
    assert_int_equal(ps.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ps.num[i], i + 1);
        assert_int_equal(ps.size[i], len[i]);
    }
    uploads_seen_t us = {0};
    OK(os_mpu_list(B, "mp", "", collect_upload, &us, &E));
    assert_int_equal(us.n, 1);
    assert_string_equal(us.keys[0], "big/object");
    assert_string_equal(us.ids[0], id);
    FAILS(os_head(B, "mp", "big/object", &m, &E), "NoSuchKey");

    /* quoted ETags, as clients send them, are accepted */
    char quoted[72];
    snprintf(quoted, sizeof quoted, "\"%.32s\"", refs[2].etag);
    snprintf(refs[2].etag, sizeof refs[2].etag, "%s", quoted);
    OK(os_mpu_complete(B, "mp", "big/object", id, OS_VERSIONING_OFF, refs, 3, NULL, &m, &E));
    char want[72];
    s3_multipart_etag((const unsigned char *const *)data, len, 3, want);
    assert_string_equal(m.etag, want);
    assert_int_equal(m.size, len[0] + len[1] + len[2]);
    os_meta_clear(&m);

    OK(os_head(B, "mp", "big/object", &m, &E));
    assert_string_equal(m.etag, want);
    assert_string_equal(m.content_type, "application/x-test");
    assert_string_equal(json_string_value(json_object_get(m.user_meta, "x-amz-meta-a")), "1");
    os_meta_clear(&m);
    size_t total = len[0] + len[1] + len[2];
    unsigned char *all = malloc(total);
    memcpy(all, data[0], len[0]);
    memcpy(all + len[0], data[1], len[1]);
    memcpy(all + len[0] + len[1], data[2], len[2]);
    assert_content("mp", "big/object", all, total);
    /* a range across the part boundaries */
    sinkbuf_t s = get_range("mp", "big/object", 5 * MiB - 10, 5 * MiB + 20);
    assert_int_equal(s.len, 5 * MiB + 20);
    assert_memory_equal(s.data, all + 5 * MiB - 10, 5 * MiB + 20);
    free(s.data);

    /* the upload is gone */
    us.n = 0;
    OK(os_mpu_list(B, "mp", "", collect_upload, &us, &E));
    assert_int_equal(us.n, 0);
    FAILS(os_mpu_list_parts(B, "mp", id, NULL, collect_part, &ps, &E), "NoSuchUpload");
    FAILS(os_mpu_complete(B, "mp", "big/object", id, OS_VERSIONING_OFF, refs, 3, NULL, &m, &E), "NoSuchUpload");

    /* the replaced part 2 is garbage; after gc the object is still whole */
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_content("mp", "big/object", all, total);
    free(all);
    for (int i = 0; i < 3; i++)
        free(data[i]);
}

static void test_multipart_errors(void **state)
{
    (void)state;
    new_bucket("mpe");
    char id[96];
    OK(os_mpu_create(B, "mpe", "k", NULL, id, &E));
    unsigned char small[2048], *big = malloc(5 * MiB);
    pattern(small, sizeof small, 1);
    pattern(big, 5 * MiB, 2);
    os_part_ref_t refs[3] = {{.number = 1}, {.number = 2}, {.number = 3}};
    upload_part("mpe", id, 1, small, sizeof small, refs[0].etag);
    upload_part("mpe", id, 2, small, 1000, refs[1].etag);
    upload_part("mpe", id, 3, big, 5 * MiB, refs[2].etag);
    free(big);
    os_meta_t m = {0};

    os_part_ref_t wrong[2] = {refs[0], refs[1]};
    wrong[1].etag[0] = wrong[1].etag[0] == 'a' ? 'b' : 'a';
    FAILS(os_mpu_complete(B, "mpe", "k", id, OS_VERSIONING_OFF, wrong, 2, NULL, &m, &E), "InvalidPart");
    assert_int_equal(E.http_status, 400);
    os_part_ref_t missing[1] = {{.number = 7}};
    snprintf(missing[0].etag, sizeof missing[0].etag, "%s", refs[0].etag);
    FAILS(os_mpu_complete(B, "mpe", "k", id, OS_VERSIONING_OFF, missing, 1, NULL, &m, &E), "InvalidPart");
    os_part_ref_t order[2] = {refs[1], refs[0]};
    FAILS(os_mpu_complete(B, "mpe", "k", id, OS_VERSIONING_OFF, order, 2, NULL, &m, &E), "InvalidPartOrder");
    FAILS(os_mpu_complete(B, "mpe", "k", id, OS_VERSIONING_OFF, refs, 2, NULL, &m, &E), "EntityTooSmall");
    FAILS(os_mpu_complete(B, "mpe", "other-key", id, OS_VERSIONING_OFF, refs, 1, NULL, &m, &E), "NoSuchUpload");
    FAILS(os_mpu_part_begin(B, "mpe", id, 0, NULL, &E), "InternalError");
    os_put_t *p;
    FAILS(os_mpu_part_begin(B, "mpe", id, 10001, &p, &E), "InvalidArgument");
    FAILS(os_mpu_part_begin(B, "mpe", "0123456789abcdef0123456789abcdef", 1, &p, &E), "NoSuchUpload");
    FAILS(os_mpu_part_begin(B, "mpe", "../../etc", 1, &p, &E), "NoSuchUpload");
    FAILS(os_head(B, "mpe", "k", &m, &E), "NoSuchKey");

    /* a single small part is a valid upload (the last part has no minimum) */
    char id2[96];
    OK(os_mpu_create(B, "mpe", "one", NULL, id2, &E));
    os_part_ref_t one = {.number = 1};
    upload_part("mpe", id2, 1, small, 10, one.etag);
    OK(os_mpu_complete(B, "mpe", "one", id2, OS_VERSIONING_OFF, &one, 1, NULL, &m, &E));
    os_meta_clear(&m);
    assert_content("mpe", "one", small, 10);

    /* failures leave the upload as it was; abort removes it */
    parts_seen_t ps = {0};
    OK(os_mpu_list_parts(B, "mpe", id, NULL, collect_part, &ps, &E));
    assert_int_equal(ps.n, 3);
    OK(os_mpu_abort(B, "mpe", id, &E));
    FAILS(os_mpu_abort(B, "mpe", id, &E), "NoSuchUpload");
    FAILS(os_mpu_list_parts(B, "mpe", id, NULL, collect_part, &ps, &E), "NoSuchUpload");
    FAILS(os_mpu_part_begin(B, "mpe", id, 1, &p, &E), "NoSuchUpload");
    FAILS(os_head(B, "mpe", "k", &m, &E), "NoSuchKey");
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("mpe"), 1);   /* only "one" */
}

static void test_list_uploads(void **state)
{
    (void)state;
    new_bucket("lu");
    char id[3][96];
    OK(os_mpu_create(B, "lu", "photos/b", NULL, id[0], &E));
    OK(os_mpu_create(B, "lu", "photos/a", NULL, id[1], &E));
    OK(os_mpu_create(B, "lu", "docs/x", NULL, id[2], &E));
    uploads_seen_t us = {0};
    OK(os_mpu_list(B, "lu", "photos/", collect_upload, &us, &E));
    assert_int_equal(us.n, 2);
    assert_string_equal(us.keys[0], "photos/a");
    assert_string_equal(us.ids[0], id[1]);
    assert_string_equal(us.keys[1], "photos/b");
    us.n = 0;
    OK(os_mpu_list(B, "lu", "", collect_upload, &us, &E));
    assert_int_equal(us.n, 3);
    assert_string_equal(us.keys[0], "docs/x");
    for (int i = 0; i < 3; i++)
        OK(os_mpu_abort(B, "lu", id[i], &E));
}

/* ---- buckets ---- */

static void test_bucket_delete(void **state)
{
    (void)state;
    new_bucket("bd");
    new_bucket("bd");   /* idempotent */
    put_str("bd", "k", "v");
    FAILS(os_bucket_delete(B, "bd", &E), "BucketNotEmpty");
    assert_int_equal(E.http_status, 409);
    assert_string_equal(E.message, "The bucket you tried to delete is not empty");
    OK(os_delete(B, "bd", "k", NULL, OS_VERSIONING_OFF, NULL, &E));
    char id[96];
    OK(os_mpu_create(B, "bd", "u", NULL, id, &E));
    FAILS(os_bucket_delete(B, "bd", &E), "BucketNotEmpty");
    OK(os_mpu_abort(B, "bd", id, &E));
    OK(os_bucket_delete(B, "bd", &E));
    os_meta_t m = {0};
    FAILS(os_head(B, "bd", "k", &m, &E), "NoSuchBucket");
    FAILS(os_bucket_delete(B, "bd", &E), "NoSuchBucket");
    FAILS(os_mpu_create(B, "bd", "u", NULL, id, &E), "NoSuchBucket");
    /* a write into a deleted bucket fails by commit at the latest */
    os_put_t *p;
    memset(&E, 0, sizeof E);
    if (os_put_begin(B, "bd", "k", OS_VERSIONING_OFF, &p, &E) == 0) {
        OK(os_put_write(p, "x", 1, &E));
        FAILS(os_put_commit(p, &m, &E), "NoSuchBucket");
    } else
        assert_string_equal(E.code, "NoSuchBucket");
    /* the garbage of the deleted bucket is still collected */
    OK(os_backend_gc(B, 0, 0, &E));
    assert_int_equal(count_data("bd"), 0);
    /* and the id can be used again */
    new_bucket("bd");
    put_str("bd", "k", "again");
    assert_content("bd", "k", "again", 5);

    FAILS(os_bucket_create(B, "../evil", &E), "InvalidArgument");
    FAILS(os_bucket_create(B, "", &E), "InvalidArgument");
    char key[1100];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    FAILS(os_put_begin(B, "bd", key, OS_VERSIONING_OFF, &p, &E), "KeyTooLongError");
    FAILS(os_put_begin(B, "bd", "", OS_VERSIONING_OFF, &p, &E), "InvalidArgument");
}

/* ---- gc ---- */

static void test_gc(void **state)
{
    (void)state;
    new_bucket("gc");
    put_str("gc", "k", "version one");
    put_str("gc", "k", "version two");
    assert_int_equal(count_data("gc"), 2);
    OK(os_backend_gc(B, 3600, 3600, &E));   /* within grace: kept */
    assert_int_equal(count_data("gc"), 2);
    OK(os_backend_gc(B, 0, 3600, &E));      /* past grace: gone */
    assert_int_equal(count_data("gc"), 1);
    assert_content("gc", "k", "version two", 11);

    /* uploads never completed are aborted once stale, their data then collected */
    char id[96], etag[72];
    OK(os_mpu_create(B, "gc", "u", NULL, id, &E));
    upload_part("gc", id, 1, "part", 4, etag);
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("gc"), 2);
    OK(os_backend_gc(B, 3600, 0, &E));
    uploads_seen_t us = {0};
    OK(os_mpu_list(B, "gc", "", collect_upload, &us, &E));
    assert_int_equal(us.n, 0);
    OK(os_backend_gc(B, 0, 0, &E));
    assert_int_equal(count_data("gc"), 1);

    /* a write gc has given up as dead cannot commit any more */
    size_t n = 6 * MiB;
    unsigned char *buf = malloc(n);
    pattern(buf, n, 9);
    os_put_t *p;
    os_meta_t m = {0};
    OK(os_put_begin(B, "gc", "slow", OS_VERSIONING_OFF, &p, &E));
    OK(os_put_write(p, buf, n, &E));
    sleep(1);
    OK(os_backend_gc(B, 0, 0, &E));
    memset(&E, 0, sizeof E);
    assert_int_equal(os_put_commit(p, &m, &E), -1);
    FAILS(os_head(B, "gc", "slow", &m, &E), "NoSuchKey");
    OK(os_backend_gc(B, 0, 0, &E));
    assert_int_equal(count_data("gc"), 1);
    free(buf);
}

/* ---- concurrency ---- */

#define THREADS 4
#define ROUNDS 8

static void *overwriter(void *arg)
{
    char body[64];
    verr_t e;
    for (int i = 0; i < ROUNDS; i++) {
        os_put_t *p;
        os_meta_t m = {0};
        int len = snprintf(body, sizeof body, "thread %ld round %d", (long)(intptr_t)arg, i);
        if (os_put_begin(B, "cc", "hot", OS_VERSIONING_OFF, &p, &e) || os_put_write(p, body, (size_t)len, &e) ||
            os_put_commit(p, &m, &e))
            return (void *)1;
        os_meta_clear(&m);
    }
    return NULL;
}

typedef struct part_job {
    const char *id;
    int num;
    char etag[72];
} part_job_t;

static void *part_uploader(void *arg)
{
    part_job_t *j = arg;
    char body[32];
    verr_t e;
    os_put_t *p;
    os_meta_t m = {0};
    int len = snprintf(body, sizeof body, "part %d", j->num);
    if (os_mpu_part_begin(B, "cc", j->id, j->num, &p, &e) || os_put_write(p, body, (size_t)len, &e) ||
        os_mpu_part_commit(p, &m, &e))
        return (void *)1;
    snprintf(j->etag, sizeof j->etag, "%s", m.etag);
    os_meta_clear(&m);
    return NULL;
}

static void test_concurrency(void **state)
{
    (void)state;
    new_bucket("cc");
    pthread_t t[THREADS * 2];
    void *ret;
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, overwriter, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    /* every replaced version was garbage-listed: nothing leaks */
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("cc"), 1);

    /* parts committed at the same time all survive */
    char id[96];
    OK(os_mpu_create(B, "cc", "parts", NULL, id, &E));
    part_job_t jobs[THREADS * 2];
    for (int i = 0; i < THREADS * 2; i++) {
        jobs[i] = (part_job_t){id, i + 1, ""};
        pthread_create(&t[i], NULL, part_uploader, &jobs[i]);
    }
    for (int i = 0; i < THREADS * 2; i++) {
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    parts_seen_t ps = {0};
    OK(os_mpu_list_parts(B, "cc", id, NULL, collect_part, &ps, &E));
    assert_int_equal(ps.n, THREADS * 2);
    os_part_ref_t last = {.number = THREADS * 2};
    snprintf(last.etag, sizeof last.etag, "%s", jobs[THREADS * 2 - 1].etag);
    os_meta_t m = {0};
    OK(os_mpu_complete(B, "cc", "parts", id, OS_VERSIONING_OFF, &last, 1, NULL, &m, &E));
    os_meta_clear(&m);
    assert_content("cc", "parts", "part 8", 6);
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("cc"), 2);
}

#include "backend_scenarios_versions.c"
#include "backend_scenarios_acl.c"
#include "os_checksum_scenarios.c"

#define OS_SCENARIOS                                     \
    OS_CHECKSUM_SCENARIOS                                \
    cmocka_unit_test(test_roundtrip),                    \
    cmocka_unit_test(test_overwrite_atomic),             \
    cmocka_unit_test(test_read_during_overwrite),        \
    cmocka_unit_test(test_abort_and_delete),             \
    cmocka_unit_test(test_list),                         \
    cmocka_unit_test(test_ranges),                       \
    cmocka_unit_test(test_multipart),                    \
    cmocka_unit_test(test_multipart_errors),             \
    cmocka_unit_test(test_list_uploads),                 \
    cmocka_unit_test(test_bucket_delete),                \
    cmocka_unit_test(test_gc),                           \
    cmocka_unit_test(test_concurrency),                  \
    OS_ACL_SCENARIOS                                     \
    OS_VERSION_SCENARIOS

static int group_setup(void **state)
{
    (void)state;
    B = test_open();
    if (!B)
        print_error("backend open failed: %s %s\n", E.code, E.message);
    return B ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    test_close();
    return 0;
}

#ifndef OS_TEST_NO_MAIN
int main(void)
{
    const struct CMUnitTest tests[] = {OS_SCENARIOS};
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
#endif
