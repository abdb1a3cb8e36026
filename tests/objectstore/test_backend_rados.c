/* test_backend_rados.c - the object store's storage layer on a real Ceph cluster.
 *
 * Runs every scenario of tests/unit/test_backend_dir.c (included below, so the two
 * backends are held to exactly the same behaviour) against the RADOS backend with small
 * objects striped like big ones (inline_bytes 0: the scenarios count data objects), plus
 * what only RADOS has: small objects stored inline in the index (their own scenario, on a
 * second backend with the default inline size, versions included), an index entry of the
 * format written before versioning (write_old_entry), a write that crashed between data and
 * commit (stripes with a gap and a pending key) reaped by gc, and a timing loop printing
 * single-thread PUT/GET rates for 4 KiB and 4 MiB objects (informational, never asserted). Configuration comes from
 * the environment as for the service (VIRGA_OBJECTSTORE_RADOS_CONF, _KEYRING, _USER,
 * _POOL); tests/objectstore/run-rados-test.sh starts a throwaway cluster and sets them.
 * The pool must be empty: the test refuses to run on a pool that holds anything. */
#define OS_TEST_EXTERNAL_SETUP 1
#define OS_TEST_NO_MAIN 1

#include <rados/librados.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "config.h"

static config_t *cfg;
static rados_t cluster;
static rados_ioctx_t io;
static os_backend_t *B;   /* tentative definitions, shared with the scenarios */
static verr_t E;

/* The test's own connection, to look at what the backend stored. */
static int raw_connect(void)
{
    char name[128];
    snprintf(name, sizeof name, "client.%s", config_str(cfg, "objectstore.rados.user", "virga"));
    const char *keyring = config_str(cfg, "objectstore.rados.keyring", NULL);
    if (rados_create2(&cluster, "ceph", name, 0) < 0 ||
        rados_conf_read_file(cluster, config_str(cfg, "objectstore.rados.conf", NULL)) < 0 ||
        (keyring && rados_conf_set(cluster, "keyring", keyring) < 0) || rados_connect(cluster) < 0 ||
        rados_ioctx_create(cluster, config_str(cfg, "objectstore.rados.pool", "virga"), &io) < 0)
        return -1;
    return 0;
}

/* Objects in the pool whose name starts with prefix. */
static int count_objects(const char *prefix)
{
    rados_list_ctx_t ctx;
    const char *oid;
    int n = 0;
    if (rados_nobjects_list_open(io, &ctx) < 0)
        return -1;
    while (rados_nobjects_list_next(ctx, &oid, NULL, NULL) == 0)
        n += strncmp(oid, prefix, strlen(prefix)) == 0;
    rados_nobjects_list_close(ctx);
    return n;
}

static int count_data(const char *bucket)
{
    char prefix[200];
    snprintf(prefix, sizeof prefix, "d.%s.", bucket);
    return count_objects(prefix);
}

static os_backend_t *test_open(void)
{
    cfg = config_new();
    config_set(cfg, "objectstore.backend", "rados");
    config_set(cfg, "objectstore.rados.inline_bytes", "0");
    if (raw_connect() < 0) {
        fprintf(stderr, "cannot connect to the cluster (VIRGA_OBJECTSTORE_RADOS_CONF=%s)\n",
                config_str(cfg, "objectstore.rados.conf", "(unset)"));
        return NULL;
    }
    int n = count_objects("");
    if (n != 0) {
        fprintf(stderr, "the pool holds %d objects: this test needs an empty pool\n", n);
        return NULL;
    }
    return os_backend_open(cfg, &E);
}

static void test_close(void)
{
    os_backend_close(B);
    rados_ioctx_destroy(io);
    rados_shutdown(cluster);
    config_free(cfg);
}

static void md5_hex(const void *data, size_t n, char hex[33]);

/* An object as the RADOS backend wrote it before versioning existed: a JSON index entry
 * without version fields, its bytes in one stripe. */
static void write_old_entry(const char *bucket, const char *key, const char *data)
{
    static const char v[] = "0123456789abcdef0123abcd";
    char oid[256], okey[256], etag[33], val[512];
    md5_hex(data, strlen(data), etag);
    snprintf(oid, sizeof oid, "d.%s.%s.0", bucket, v);
    if (rados_write_full(io, oid, data, strlen(data)) < 0)
        abort();
    snprintf(okey, sizeof okey, "o%s", key);
    int n = snprintf(val, sizeof val,
                     "{\"ct\":\"text/plain\",\"size\":%zu,\"etag\":\"%s\",\"mtime\":1700000000,\"v\":\"%s\","
                     "\"sb\":4194304}", strlen(data), etag, v);
    const char *keys[1] = {okey}, *vals[1] = {val};
    size_t klen[1] = {strlen(okey)}, vlen[1] = {(size_t)n};
    rados_write_op_t op = rados_create_write_op();
    rados_write_op_omap_set2(op, keys, vals, klen, vlen, 1);
    snprintf(oid, sizeof oid, "i.%s", bucket);
    if (rados_write_op_operate2(op, io, oid, NULL, 0) < 0)
        abort();
    rados_release_write_op(op);
}

#include "../unit/test_backend_dir.c"

/* A write that died after some stripes and its pending key: gc removes it all once
 * stale, even with a gap among the stripes (aio writes complete out of order). */
static void test_crashed_write(void **state)
{
    (void)state;
    new_bucket("cr");
    const char *ver = "0123456789abcdef01234567";
    char oid[200], pkey[64];
    for (int i = 0; i < 6; i++)
        if (i != 2) {
            snprintf(oid, sizeof oid, "d.cr.%s.%d", ver, i);
            assert_int_equal(rados_write_full(io, oid, "data", 4), 0);
        }
    snprintf(pkey, sizeof pkey, "p%010lld.%s", (long long)time(NULL) - 100, ver);
    const char *keys[1] = {pkey}, *vals[1] = {"{}"};
    size_t klen[1] = {strlen(pkey)}, vlen[1] = {2};
    rados_write_op_t op = rados_create_write_op();
    rados_write_op_omap_set2(op, keys, vals, klen, vlen, 1);
    assert_int_equal(rados_write_op_operate2(op, io, "i.cr", NULL, 0), 0);
    rados_release_write_op(op);
    assert_int_equal(count_data("cr"), 5);

    OK(os_backend_gc(B, 0, 3600, &E));   /* not stale yet */
    assert_int_equal(count_data("cr"), 5);
    OK(os_backend_gc(B, 0, 60, &E));
    assert_int_equal(count_data("cr"), 0);
    /* and the pending key is gone with it */
    rados_read_op_t rop = rados_create_read_op();
    rados_omap_iter_t it;
    unsigned char more;
    int prval;
    rados_read_op_omap_get_vals2(rop, "", "p", 10, &it, &more, &prval);
    assert_int_equal(rados_read_op_operate(rop, io, "i.cr", 0), 0);
    assert_int_equal(rados_omap_iter_size(it), 0);
    rados_omap_get_end(it);
    rados_release_read_op(rop);
}

/* Writers alternating small (inline) and large (striped) versions of one key. */
static void *mixed_writer(void *arg)
{
    size_t n = 40000;
    unsigned char *buf = malloc(n);
    pattern(buf, n, (uint32_t)(intptr_t)arg);
    verr_t e;
    void *ret = NULL;
    for (int i = 0; i < 8 && !ret; i++) {
        os_put_t *p;
        os_meta_t m = {0};
        size_t len = (i + (int)(intptr_t)arg) % 2 ? n : 100;
        if (os_put_begin(B, "in", "hot", OS_VERSIONING_OFF, &p, &e) || os_put_write(p, buf, len, &e) || os_put_commit(p, &m, &e))
            ret = (void *)1;
        os_meta_clear(&m);
    }
    free(buf);
    return ret;
}

static void test_inline(void **state)
{
    (void)state;
    os_backend_t *striped = B;
    config_set(cfg, "objectstore.rados.inline_bytes", "16384");
    B = os_backend_open(cfg, &E);
    assert_non_null(B);
    new_bucket("in");
    os_meta_t m = {0};
    char hex[33];

    /* small and empty objects: no data objects at all */
    put_str("in", "small", "tiny object");
    put_chunked("in", "empty", "", 0, 1, &m);
    assert_string_equal(m.etag, "d41d8cd98f00b204e9800998ecf8427e");
    os_meta_clear(&m);
    assert_int_equal(count_data("in"), 0);
    assert_content("in", "small", "tiny object", 11);
    assert_content("in", "empty", "", 0);
    sinkbuf_t s = get_range("in", "small", 5, 3);
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.data, "obj", 3);
    free(s.data);
    OK(os_head(B, "in", "small", &m, &E));
    md5_hex("tiny object", 11, hex);
    assert_string_equal(m.etag, hex);
    assert_int_equal(m.size, 11);
    os_meta_clear(&m);
    /* attributes set in place keep an inline object's bytes in its entry */
    json_t *a = json_pack("{s:{s:s}}", "acl", "owner", "inline-owner");
    OK(os_set_attrs(B, "in", "small", NULL, a, &E));
    json_decref(a);
    OK(os_head(B, "in", "small", &m, &E));
    assert_string_equal(json_string_value(json_object_get(m.acl, "owner")), "inline-owner");
    assert_string_equal(m.etag, hex);
    os_meta_clear(&m);
    assert_content("in", "small", "tiny object", 11);
    assert_int_equal(count_data("in"), 0);

    /* the threshold: 16384 bytes inline, one more striped */
    unsigned char *buf = malloc(100000);
    pattern(buf, 100000, 77);
    put_chunked("in", "edge", buf, 16384, 1000, &m);
    os_meta_clear(&m);
    assert_int_equal(count_data("in"), 0);
    put_chunked("in", "edge2", buf, 16385, 1000, &m);
    os_meta_clear(&m);
    assert_int_equal(count_data("in"), 1);
    assert_content("in", "edge", buf, 16384);
    assert_content("in", "edge2", buf, 16385);

    /* inline -> striped -> inline: the striped version becomes garbage */
    put_str("in", "k", "first");
    put_chunked("in", "k", buf, 100000, 4096, &m);
    os_meta_clear(&m);
    assert_int_equal(count_data("in"), 2);
    put_str("in", "k", "third");
    OK(os_backend_gc(B, 3600, 3600, &E));
    assert_int_equal(count_data("in"), 2);
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("in"), 1);
    assert_content("in", "k", "third", 5);

    /* listing reads the metadata of inline entries */
    listed_t l = {0};
    int trunc;
    OK(os_list(B, "in", "", "", 100, collect_key, &l, &trunc, &E));
    assert_int_equal(l.n, 5);
    assert_string_equal(l.keys[0], "edge");
    listed_free(&l);

    /* deletes, inline (one op) and striped */
    OK(os_delete(B, "in", "small", NULL, OS_VERSIONING_OFF, NULL, &E));
    FAILS(os_head(B, "in", "small", &m, &E), "NoSuchKey");
    OK(os_delete(B, "in", "edge2", NULL, OS_VERSIONING_OFF, NULL, &E));
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("in"), 0);

    /* a multipart upload completed over an inline object */
    char id[96];
    os_part_ref_t ref = {.number = 1};
    OK(os_mpu_create(B, "in", "k", NULL, id, &E));
    upload_part("in", id, 1, buf, 5000, ref.etag);
    OK(os_mpu_complete(B, "in", "k", id, OS_VERSIONING_OFF, &ref, 1, NULL, &m, &E));
    os_meta_clear(&m);
    assert_content("in", "k", buf, 5000);
    assert_int_equal(count_data("in"), 1);

    /* versions of inline objects keep their bytes as they move between the latest and
     * noncurrent entries, and through changed attributes */
    char v1[OS_VERSION_ID_MAX], v2[OS_VERSION_ID_MAX];
    int before = count_data("in");
    put_v("in", "iv", "inline one", OS_VERSIONING_ENABLED, v1);
    put_v("in", "iv", "inline two", OS_VERSIONING_ENABLED, v2);
    json_t *tags = json_pack("{s:{s:s}}", "tags", "k", "v");
    OK(os_set_attrs(B, "in", "iv", v1, tags, &E));
    OK(os_set_attrs(B, "in", "iv", NULL, tags, &E));
    json_decref(tags);
    assert_version("in", "iv", v1, "inline one");
    assert_version("in", "iv", NULL, "inline two");
    OK(os_delete(B, "in", "iv", v2, OS_VERSIONING_ENABLED, NULL, &E));
    assert_version("in", "iv", NULL, "inline one");
    OK(os_head(B, "in", "iv", &m, &E));
    assert_string_equal(json_string_value(json_object_get(m.tags, "k")), "v");
    os_meta_clear(&m);
    put_v("in", "iv", "inline null", OS_VERSIONING_SUSPENDED, NULL);
    assert_version("in", "iv", v1, "inline one");
    assert_version("in", "iv", "null", "inline null");
    OK(os_delete(B, "in", "iv", v1, OS_VERSIONING_ENABLED, NULL, &E));
    OK(os_delete(B, "in", "iv", "null", OS_VERSIONING_ENABLED, NULL, &E));
    assert_int_equal(count_data("in"), before);

    /* racing writers switching one key between inline and striped leak nothing */
    pthread_t t[4];
    void *ret;
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, mixed_writer, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    OK(os_head(B, "in", "hot", &m, &E));
    int striped_hot = m.size > 16384;
    os_meta_clear(&m);
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("in"), 1 + striped_hot);

    FAILS(os_bucket_delete(B, "in", &E), "BucketNotEmpty");
    free(buf);
    os_backend_close(B);
    B = striped;
}

/* Stripe sizes that are not a multiple of the 1 MiB write piece, or smaller than it:
 * pieces must end at every stripe boundary and reads must cross them. */
static void test_odd_stripes(void **state)
{
    (void)state;
    static const char *const sizes[] = {"1572864", "69632"};
    os_backend_t *normal = B;
    size_t n = 10 * MiB + 333;
    unsigned char *buf = malloc(n);
    pattern(buf, n, 55);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char bucket[32];
        snprintf(bucket, sizeof bucket, "sb%zu", i);
        config_set(cfg, "objectstore.rados.stripe_bytes", sizes[i]);
        B = os_backend_open(cfg, &E);
        assert_non_null(B);
        new_bucket(bucket);
        os_meta_t m = {0};
        put_chunked(bucket, "k", buf, n, 300001, &m);
        os_meta_clear(&m);
        long sb = atol(sizes[i]);
        assert_int_equal(count_data(bucket), (n + (size_t)sb - 1) / (size_t)sb);
        assert_content(bucket, "k", buf, n);
        const uint64_t ranges[][2] = {{(uint64_t)sb - 5, 10}, {(uint64_t)sb * 3 - 1, (uint64_t)sb + 2}, {n - 7, 7}};
        for (size_t j = 0; j < 3; j++) {
            sinkbuf_t s = get_range(bucket, "k", ranges[j][0], ranges[j][1]);
            assert_int_equal(s.len, ranges[j][1]);
            assert_memory_equal(s.data, buf + ranges[j][0], ranges[j][1]);
            free(s.data);
        }
        os_backend_close(B);
    }
    config_set(cfg, "objectstore.rados.stripe_bytes", "4194304");
    B = normal;
    /* objects keep the stripe size they were written with */
    assert_content("sb0", "k", buf, n);
    assert_content("sb1", "k", buf, n);
    free(buf);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int discard(void *arg, const void *data, size_t len)
{
    (void)data;
    *(size_t *)arg += len;
    return 0;
}

/* Single-thread rates for the report; the numbers are printed, not asserted. */
static void bench(const char *bucket, size_t size, int count)
{
    unsigned char *buf = malloc(size);
    pattern(buf, size, 42);
    char key[32];
    double t0 = now_s();
    for (int i = 0; i < count; i++) {
        os_meta_t m = {0};
        snprintf(key, sizeof key, "obj-%d", i);
        put_chunked(bucket, key, buf, size, 65536, &m);
        os_meta_clear(&m);
    }
    double put_s = now_s() - t0;
    t0 = now_s();
    for (int i = 0; i < count; i++) {
        size_t got = 0;
        snprintf(key, sizeof key, "obj-%d", i);
        OK(os_read(B, bucket, key, 0, size, discard, &got, NULL, &E));
        assert_int_equal(got, size);
    }
    double get_s = now_s() - t0;
    printf("bench %7zu B x %4d: PUT %8.1f ops/s %7.1f MB/s | GET %8.1f ops/s %7.1f MB/s\n", size, count,
           count / put_s, (double)count * (double)size / put_s / 1e6, count / get_s,
           (double)count * (double)size / get_s / 1e6);
    free(buf);
}

static void test_throughput(void **state)
{
    (void)state;
    new_bucket("bench");
    new_bucket("bench-big");
    new_bucket("bench-inline");
    printf("striped (inline_bytes 0):\n");
    bench("bench", 4096, 1000);
    bench("bench-big", 4 * MiB, 40);
    os_backend_t *striped = B;
    config_set(cfg, "objectstore.rados.inline_bytes", "16384");
    B = os_backend_open(cfg, &E);
    assert_non_null(B);
    printf("default (inline_bytes 16384):\n");
    bench("bench-inline", 4096, 1000);
    os_backend_close(B);
    B = striped;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        OS_SCENARIOS,
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_odd_stripes),
        cmocka_unit_test(test_crashed_write),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
