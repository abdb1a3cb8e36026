/* backend_scenarios_versions.c - S3 versioning scenarios of the backend contract,
 * included by test_backend_dir.c (and so also run on RADOS by test_backend_rados.c).
 * The includer provides B, E, OK/FAILS, put helpers, count_data and write_old_entry
 * (an index entry as the code before versioning wrote it).
 *
 * Covered: version ids on write in every bucket state, reads by id, delete markers,
 * removal of versions (the next newest becoming the latest), the null version across
 * Enabled/Suspended, ListObjectVersions order and paging by (key, version) markers with
 * awkward keys, os_set_attrs (by id, on the latest, refused fields, delete markers) and
 * its compare-and-swap under concurrent writers, gc of removed versions, entries of the
 * old format reading as the null version, and concurrent versioned writers. */

#include "backend_internal.h"   /* os_locate, to look at an entry's raw fields */

#define VID_LEN 32

/* A version written; its id into vid (may be NULL). */
static void put_v(const char *bucket, const char *key, const char *s, os_versioning_t vers,
                  char vid[OS_VERSION_ID_MAX])
{
    os_put_t *p;
    os_meta_t m = {0};
    OK(os_put_begin(B, bucket, key, vers, &p, &E));
    OK(os_put_write(p, s, strlen(s), &E));
    OK(os_put_commit(p, &m, &E));
    if (vers == OS_VERSIONING_ENABLED)
        assert_int_equal(strlen(m.version_id), VID_LEN);
    else
        assert_string_equal(m.version_id, "null");
    assert_true(os_version_id_valid(m.version_id));
    if (vid)
        snprintf(vid, OS_VERSION_ID_MAX, "%s", m.version_id);
    os_meta_clear(&m);
}

static void assert_version(const char *bucket, const char *key, const char *vid, const char *want)
{
    sinkbuf_t s = {0};
    os_meta_t m = {0};
    OK(os_read_version(B, bucket, key, vid, 0, strlen(want), to_buf, &s, &m, &E));
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.data, want, s.len);
    if (vid)
        assert_string_equal(m.version_id, vid);
    os_meta_clear(&m);
    free(s.data);
}

/* The latest version is a delete marker with this id (or there is none: id NULL). */
static void assert_deleted(const char *bucket, const char *key, const char *dm_vid)
{
    os_meta_t m = {0};
    FAILS(os_head(B, bucket, key, &m, &E), "NoSuchKey");
    sinkbuf_t s = {0};
    FAILS(os_read(B, bucket, key, 0, 1, to_buf, &s, NULL, &E), "NoSuchKey");
    if (!dm_vid) {
        FAILS(os_head_version(B, bucket, key, NULL, &m, &E), "NoSuchKey");
        return;
    }
    OK(os_head_version(B, bucket, key, NULL, &m, &E));
    assert_true(m.delete_marker);
    assert_true(m.is_latest);
    assert_string_equal(m.version_id, dm_vid);
    os_meta_clear(&m);
    FAILS(os_read_version(B, bucket, key, dm_vid, 0, 1, to_buf, &s, NULL, &E), "MethodNotAllowed");
    assert_int_equal(E.http_status, 405);
}

typedef struct vrow {
    char key[64];
    char vid[OS_VERSION_ID_MAX];
    int dm, latest;
    uint64_t size;
} vrow_t;

typedef struct vlist {
    vrow_t r[256];
    int n;
} vlist_t;

static int collect_version(void *arg, const char *key, const os_meta_t *m)
{
    vlist_t *l = arg;
    assert_true(l->n < 256);
    vrow_t *r = &l->r[l->n++];
    snprintf(r->key, sizeof r->key, "%s", key);
    snprintf(r->vid, sizeof r->vid, "%s", m->version_id);
    r->dm = m->delete_marker;
    r->latest = m->is_latest;
    r->size = m->size;
    return 0;
}

static void list_all_versions(const char *bucket, const char *prefix, vlist_t *l)
{
    int trunc = -1;
    l->n = 0;
    OK(os_list_versions(B, bucket, prefix, "", NULL, 1000, collect_version, l, &trunc, &E));
    assert_int_equal(trunc, 0);
}

static void test_versions_basic(void **state)
{
    (void)state;
    new_bucket("vb");
    char v[3][OS_VERSION_ID_MAX], dm[OS_VERSION_ID_MAX];
    const char *body[3] = {"first", "second version", "third"};
    for (int i = 0; i < 3; i++)
        put_v("vb", "k", body[i], OS_VERSIONING_ENABLED, v[i]);
    assert_string_not_equal(v[0], v[1]);
    assert_string_not_equal(v[1], v[2]);
    /* newer versions sort first */
    assert_true(strcmp(v[2], v[1]) < 0 && strcmp(v[1], v[0]) < 0);
    assert_version("vb", "k", NULL, "third");
    for (int i = 0; i < 3; i++)
        assert_version("vb", "k", v[i], body[i]);
    os_meta_t m = {0};
    OK(os_head_version(B, "vb", "k", v[0], &m, &E));
    assert_int_equal(m.size, 5);
    assert_false(m.is_latest);
    os_meta_clear(&m);
    OK(os_head(B, "vb", "k", &m, &E));
    assert_string_equal(m.version_id, v[2]);
    assert_true(m.is_latest);
    os_meta_clear(&m);

    vlist_t l;
    list_all_versions("vb", "", &l);
    assert_int_equal(l.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(l.r[i].vid, v[2 - i]);
        assert_int_equal(l.r[i].latest, i == 0);
    }
    listed_t keys = {0};
    int trunc;
    OK(os_list(B, "vb", "", "", 100, collect_key, &keys, &trunc, &E));
    assert_int_equal(keys.n, 1);
    listed_free(&keys);

    /* a delete adds a marker: the key reads as gone, every version is still there */
    os_meta_t out = {0};
    OK(os_delete(B, "vb", "k", NULL, OS_VERSIONING_ENABLED, &out, &E));
    assert_true(out.delete_marker);
    assert_int_equal(strlen(out.version_id), VID_LEN);
    snprintf(dm, sizeof dm, "%s", out.version_id);
    assert_deleted("vb", "k", dm);
    assert_version("vb", "k", v[2], "third");
    OK(os_list(B, "vb", "", "", 100, collect_key, &keys, &trunc, &E));
    assert_int_equal(keys.n, 0);
    list_all_versions("vb", "", &l);
    assert_int_equal(l.n, 4);
    assert_true(l.r[0].dm && l.r[0].latest);
    assert_string_equal(l.r[0].vid, dm);
    json_t *tags = json_pack("{s:{s:s}}", "tags", "a", "b");
    FAILS(os_set_attrs(B, "vb", "k", NULL, tags, &E), "NoSuchKey");
    json_decref(tags);

    /* removing the marker brings the object back */
    OK(os_delete(B, "vb", "k", dm, OS_VERSIONING_ENABLED, &out, &E));
    assert_true(out.delete_marker);
    assert_string_equal(out.version_id, dm);
    assert_version("vb", "k", NULL, "third");

    /* removing a noncurrent version, then a version that is not there (no error) */
    OK(os_delete(B, "vb", "k", v[1], OS_VERSIONING_ENABLED, &out, &E));
    assert_false(out.delete_marker);
    assert_string_equal(out.version_id, v[1]);
    FAILS(os_head_version(B, "vb", "k", v[1], &m, &E), "NoSuchVersion");
    assert_int_equal(E.http_status, 404);
    OK(os_delete(B, "vb", "k", v[1], OS_VERSIONING_ENABLED, &out, &E));
    OK(os_delete(B, "vb", "nokey", v[1], OS_VERSIONING_ENABLED, &out, &E));
    assert_string_equal(out.version_id, v[1]);
    FAILS(os_delete(B, "vb", "k", "xyz", OS_VERSIONING_ENABLED, &out, &E), "InvalidArgument");
    FAILS(os_head_version(B, "vb", "k", "0123", &m, &E), "InvalidArgument");
    FAILS(os_head_version(B, "vb", "nokey", v[0], &m, &E), "NoSuchVersion");
    FAILS(os_head_version(B, "vb", "nokey", "null", &m, &E), "NoSuchKey");
    FAILS(os_head_version(B, "vb", "k", "null", &m, &E), "NoSuchVersion");

    /* removing the latest makes the next newest the latest */
    OK(os_delete(B, "vb", "k", v[2], OS_VERSIONING_ENABLED, &out, &E));
    assert_version("vb", "k", NULL, "first");
    OK(os_head(B, "vb", "k", &m, &E));
    assert_string_equal(m.version_id, v[0]);
    os_meta_clear(&m);

    /* a bucket with any version, even only a delete marker, is not empty */
    OK(os_delete(B, "vb", "k", NULL, OS_VERSIONING_ENABLED, &out, &E));
    OK(os_delete(B, "vb", "k", v[0], OS_VERSIONING_ENABLED, NULL, &E));
    FAILS(os_bucket_delete(B, "vb", &E), "BucketNotEmpty");
    OK(os_delete(B, "vb", "k", out.version_id, OS_VERSIONING_ENABLED, NULL, &E));
    assert_deleted("vb", "k", NULL);
    /* a delete in an Enabled bucket marks even a key that never existed */
    OK(os_delete(B, "vb", "ghost", NULL, OS_VERSIONING_ENABLED, &out, &E));
    assert_true(out.delete_marker);
    FAILS(os_bucket_delete(B, "vb", &E), "BucketNotEmpty");
    OK(os_delete(B, "vb", "ghost", out.version_id, OS_VERSIONING_ENABLED, NULL, &E));
    OK(os_bucket_delete(B, "vb", &E));
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("vb"), 0);
}

/* The null version: written before versioning and while it is suspended. */
static void test_versions_null(void **state)
{
    (void)state;
    new_bucket("vn");
    char r1[OS_VERSION_ID_MAX], r2[OS_VERSION_ID_MAX];
    vlist_t l;
    put_v("vn", "k", "null-1", OS_VERSIONING_OFF, NULL);
    assert_version("vn", "k", "null", "null-1");
    put_v("vn", "k", "real-1", OS_VERSIONING_ENABLED, r1);
    list_all_versions("vn", "", &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.r[0].vid, r1);
    assert_string_equal(l.r[1].vid, "null");
    assert_version("vn", "k", "null", "null-1");
    int data_before = count_data("vn");

    /* suspended: a write replaces the null version and keeps the real ones */
    put_v("vn", "k", "null-2", OS_VERSIONING_SUSPENDED, NULL);
    list_all_versions("vn", "", &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.r[0].vid, "null");
    assert_true(l.r[0].latest);
    assert_string_equal(l.r[1].vid, r1);
    assert_version("vn", "k", "null", "null-2");
    assert_version("vn", "k", NULL, "null-2");
    assert_version("vn", "k", r1, "real-1");
    put_v("vn", "k", "null-3", OS_VERSIONING_SUSPENDED, NULL);
    list_all_versions("vn", "", &l);
    assert_int_equal(l.n, 2);
    assert_version("vn", "k", "null", "null-3");

    /* enabled again: the null version stays, noncurrent, addressable */
    put_v("vn", "k", "real-2", OS_VERSIONING_ENABLED, r2);
    list_all_versions("vn", "", &l);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.r[0].vid, r2);
    assert_string_equal(l.r[1].vid, "null");
    assert_string_equal(l.r[2].vid, r1);
    assert_version("vn", "k", "null", "null-3");

    /* a suspended delete makes a null delete marker the latest, replacing null-3 */
    os_meta_t out = {0};
    OK(os_delete(B, "vn", "k", NULL, OS_VERSIONING_SUSPENDED, &out, &E));
    assert_true(out.delete_marker);
    assert_string_equal(out.version_id, "null");
    assert_deleted("vn", "k", "null");
    list_all_versions("vn", "", &l);
    assert_int_equal(l.n, 3);
    assert_true(l.r[0].dm);
    assert_string_equal(l.r[1].vid, r2);
    assert_string_equal(l.r[2].vid, r1);

    /* removing the null marker brings back r2; then remove the rest */
    OK(os_delete(B, "vn", "k", "null", OS_VERSIONING_SUSPENDED, &out, &E));
    assert_true(out.delete_marker);
    assert_version("vn", "k", NULL, "real-2");
    /* a null version that is noncurrent can be removed by its id */
    put_v("vn", "k", "null-4", OS_VERSIONING_SUSPENDED, NULL);
    put_v("vn", "k", "real-3", OS_VERSIONING_ENABLED, NULL);
    OK(os_delete(B, "vn", "k", "null", OS_VERSIONING_ENABLED, &out, &E));
    assert_false(out.delete_marker);
    os_meta_t m = {0};
    FAILS(os_head_version(B, "vn", "k", "null", &m, &E), "NoSuchVersion");
    list_all_versions("vn", "", &l);
    assert_int_equal(l.n, 3);
    for (int i = 0; i < l.n; i++)
        OK(os_delete(B, "vn", "k", l.r[i].vid, OS_VERSIONING_ENABLED, NULL, &E));
    assert_deleted("vn", "k", NULL);
    list_all_versions("vn", "", &l);
    assert_int_equal(l.n, 0);
    /* every version removed or replaced was garbage: gc takes all the data */
    assert_true(data_before > 0);
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("vn"), 0);
    /* in a never-versioned bucket a delete removes the null version for good */
    put_v("vn", "plain", "x", OS_VERSIONING_OFF, NULL);
    OK(os_delete(B, "vn", "plain", NULL, OS_VERSIONING_OFF, &out, &E));
    list_all_versions("vn", "", &l);
    assert_int_equal(l.n, 0);
    OK(os_bucket_delete(B, "vn", &E));
}

/* Listing every version in pages of every size gives the same sequence as one call. */
static void page_all(const char *bucket, const char *prefix, size_t max, const vlist_t *full)
{
    char key[64] = "", vid[OS_VERSION_ID_MAX] = "";
    int got = 0, trunc = 1, pages = 0;
    while (trunc) {
        vlist_t l = {.n = 0};
        OK(os_list_versions(B, bucket, prefix, key, vid[0] ? vid : NULL, max, collect_version, &l, &trunc, &E));
        assert_true((size_t)l.n <= max);
        if (trunc)
            assert_int_equal(l.n, max);
        for (int i = 0; i < l.n; i++) {
            assert_true(got + i < full->n);
            assert_string_equal(l.r[i].key, full->r[got + i].key);
            assert_string_equal(l.r[i].vid, full->r[got + i].vid);
            assert_int_equal(l.r[i].latest, full->r[got + i].latest);
        }
        got += l.n;
        if (l.n) {
            snprintf(key, sizeof key, "%s", l.r[l.n - 1].key);
            snprintf(vid, sizeof vid, "%s", l.r[l.n - 1].vid);
        }
        assert_true(++pages <= full->n + 1);
    }
    assert_int_equal(got, full->n);
}

static void test_versions_listing(void **state)
{
    (void)state;
    new_bucket("vl");
    /* keys chosen to test the order around \x01 (escaped in the RADOS index) */
    const struct {
        const char *key;
        int versions, marker, null_first;
    } keys[] = {{"x\x01y", 1, 0, 0}, {"a", 3, 0, 1}, {"x", 2, 1, 0}, {"b/2", 2, 1, 0},
                {"x\x02", 1, 0, 0}, {"b/1", 1, 0, 1}, {"x\x01", 2, 0, 0}, {"c", 5, 0, 0}};
    const char *order[] = {"a", "b/1", "b/2", "c", "x", "x\x01", "x\x01y", "x\x02"};
    int total = 0;
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        if (keys[i].null_first)
            put_v("vl", keys[i].key, "null", OS_VERSIONING_OFF, NULL);
        for (int j = 0; j < keys[i].versions; j++)
            put_v("vl", keys[i].key, keys[i].key, OS_VERSIONING_ENABLED, NULL);
        if (keys[i].marker)
            OK(os_delete(B, "vl", keys[i].key, NULL, OS_VERSIONING_ENABLED, NULL, &E));
        total += keys[i].versions + keys[i].marker + keys[i].null_first;
    }
    vlist_t full;
    list_all_versions("vl", "", &full);
    assert_int_equal(full.n, total);
    /* keys in byte order; within a key the latest first, then older and older */
    int k = -1;
    for (int i = 0; i < full.n; i++) {
        int first = i == 0 || strcmp(full.r[i].key, full.r[i - 1].key);
        if (first)
            assert_string_equal(full.r[i].key, order[++k]);
        assert_int_equal(full.r[i].latest, first);
        if (!first && strcmp(full.r[i].vid, "null") && strcmp(full.r[i - 1].vid, "null"))
            assert_true(strcmp(full.r[i - 1].vid, full.r[i].vid) < 0);
    }
    assert_int_equal(k, (int)ARRAY_LEN(order) - 1);
    /* the null version written first is the oldest of its key */
    for (int i = 0; i + 1 < full.n; i++)
        if (!strcmp(full.r[i].key, "a") && strcmp(full.r[i + 1].key, "a"))
            assert_string_equal(full.r[i].vid, "null");
    for (size_t max = 1; max <= 4; max++)
        page_all("vl", "", max, &full);
    page_all("vl", "", 7, &full);

    /* prefix, and a key marker alone skips all of that key's versions */
    vlist_t l;
    list_all_versions("vl", "b/", &l);
    assert_int_equal(l.n, 5);   /* b/1: null + 1, b/2: 2 + a marker */
    assert_string_equal(l.r[0].key, "b/1");
    int trunc;
    l.n = 0;
    OK(os_list_versions(B, "vl", "", "c", NULL, 1000, collect_version, &l, &trunc, &E));
    assert_string_equal(l.r[0].key, "x");
    /* a version marker of a key's latest continues with its older versions */
    int c = 0;
    while (strcmp(full.r[c].key, "c"))
        c++;
    assert_true(full.r[c].latest);
    l.n = 0;
    OK(os_list_versions(B, "vl", "", "c", full.r[c].vid, 2, collect_version, &l, &trunc, &E));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.r[0].vid, full.r[c + 1].vid);
    assert_false(l.r[0].latest);
    assert_int_equal(trunc, 1);
    /* and "null" as a version marker */
    l.n = 0;
    OK(os_list_versions(B, "vl", "", "a", "null", 1, collect_version, &l, &trunc, &E));
    assert_string_equal(l.r[0].key, "b/1");
    FAILS(os_list_versions(B, "vl", "", "", "null", 10, collect_version, &l, &trunc, &E), "InvalidArgument");

    /* ListObjects: latest versions only, and not the keys whose latest is a marker */
    listed_t names = {0};
    OK(os_list(B, "vl", "", "", 100, collect_key, &names, &trunc, &E));
    assert_int_equal(names.n, 6);
    for (int i = 0; i < names.n; i++)
        assert_true(strcmp(names.keys[i], "x") && strcmp(names.keys[i], "b/2"));
    listed_free(&names);
    /* paging ListObjects over markers still finds every key */
    char after[64] = "";
    int seen = 0;
    do {
        OK(os_list(B, "vl", "", after, 1, collect_key, &names, &trunc, &E));
        assert_true(names.n <= 1);
        if (names.n)
            snprintf(after, sizeof after, "%s", names.keys[0]);
        seen += names.n;
        listed_free(&names);
    } while (trunc);
    assert_int_equal(seen, 6);
}

static const char *tag_of(const os_meta_t *m, const char *k)
{
    return json_string_value(json_object_get(m->tags, k));
}

static void test_versions_attrs(void **state)
{
    (void)state;
    new_bucket("va");
    char v1[OS_VERSION_ID_MAX], v2[OS_VERSION_ID_MAX], etag[72];
    put_v("va", "k", "one", OS_VERSIONING_ENABLED, v1);
    put_v("va", "k", "two!", OS_VERSIONING_ENABLED, v2);
    os_meta_t m = {0};
    OK(os_head(B, "va", "k", &m, &E));
    snprintf(etag, sizeof etag, "%s", m.etag);
    int64_t mtime = m.mtime;
    os_meta_clear(&m);

    json_t *a = json_pack("{s:{s:s, s:s}}", "tags", "colour", "blue", "size", "");
    OK(os_set_attrs(B, "va", "k", NULL, a, &E));
    json_decref(a);
    OK(os_head(B, "va", "k", &m, &E));
    assert_string_equal(tag_of(&m, "colour"), "blue");
    assert_string_equal(tag_of(&m, "size"), "");
    assert_string_equal(m.etag, etag);   /* the data and its time are untouched */
    assert_int_equal(m.mtime, mtime);
    assert_string_equal(m.version_id, v2);
    os_meta_clear(&m);
    assert_version("va", "k", NULL, "two!");

    a = json_pack("{s:{s:s}}", "tags", "old", "yes");
    OK(os_set_attrs(B, "va", "k", v1, a, &E));
    json_decref(a);
    OK(os_head_version(B, "va", "k", v1, &m, &E));
    assert_string_equal(tag_of(&m, "old"), "yes");
    os_meta_clear(&m);
    assert_version("va", "k", v1, "one");
    OK(os_head(B, "va", "k", &m, &E));
    assert_null(tag_of(&m, "old"));
    os_meta_clear(&m);

    /* a null value removes the field */
    a = json_pack("{s:n}", "tags");
    OK(os_set_attrs(B, "va", "k", v2, a, &E));
    OK(os_head(B, "va", "k", &m, &E));
    assert_null(m.tags);
    os_meta_clear(&m);
    /* fields of the data or the version are not attributes */
    static const char *const fixed[] = {"size", "etag", "mtime", "v", "vid", "sk", "dm", "parts", "ck"};
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++) {
        json_t *bad = json_pack("{s:i}", fixed[i], 1);
        FAILS(os_set_attrs(B, "va", "k", NULL, bad, &E), "InvalidArgument");
        json_decref(bad);
    }
    FAILS(os_set_attrs(B, "va", "nokey", NULL, a, &E), "NoSuchKey");
    FAILS(os_set_attrs(B, "va", "k", "0123456789abcdef0123456789abcdef", a, &E), "NoSuchVersion");
    FAILS(os_set_attrs(B, "va", "k", "null", a, &E), "NoSuchVersion");
    FAILS(os_set_attrs(B, "va", "k", "bogus", a, &E), "InvalidArgument");
    os_meta_t out = {0};
    OK(os_delete(B, "va", "k", NULL, OS_VERSIONING_ENABLED, &out, &E));
    FAILS(os_set_attrs(B, "va", "k", NULL, a, &E), "NoSuchKey");
    FAILS(os_set_attrs(B, "va", "k", out.version_id, a, &E), "MethodNotAllowed");
    json_decref(a);
    a = json_pack("{s:{s:s}}", "tags", "n", "1");
    OK(os_set_attrs(B, "va", "k", v2, a, &E));
    json_decref(a);
    /* the null version too */
    put_v("va", "n", "null object", OS_VERSIONING_OFF, NULL);
    a = json_pack("{s:{s:s}}", "tags", "t", "1");
    OK(os_set_attrs(B, "va", "n", "null", a, &E));
    json_decref(a);
    OK(os_head(B, "va", "n", &m, &E));
    assert_string_equal(tag_of(&m, "t"), "1");
    os_meta_clear(&m);
    assert_version("va", "n", NULL, "null object");
}

/* os_set_attrs is a compare-and-swap: writers changing distinct fields of one version
 * at the same time, while new versions push it from latest to noncurrent, lose none of
 * their updates. */
#define ATTR_THREADS 4
#define ATTR_ROUNDS 6
static char attr_vid[OS_VERSION_ID_MAX];

static void *attr_writer(void *arg)
{
    long t = (long)(intptr_t)arg;
    verr_t e;
    char field[16];
    snprintf(field, sizeof field, "f%ld", t);
    for (int i = 1; i <= ATTR_ROUNDS; i++) {
        json_t *a = json_pack("{s:i}", field, i);
        int rc = os_set_attrs(B, "vc", "k", attr_vid, a, &e);
        json_decref(a);
        if (rc)
            return (void *)1;
    }
    return NULL;
}

static void *version_writer(void *arg)
{
    (void)arg;
    verr_t e;
    for (int i = 0; i < ATTR_ROUNDS; i++) {
        os_put_t *p;
        os_meta_t m = {0};
        if (os_put_begin(B, "vc", "k", OS_VERSIONING_ENABLED, &p, &e) || os_put_write(p, "newer", 5, &e) ||
            os_put_commit(p, &m, &e))
            return (void *)1;
        os_meta_clear(&m);
    }
    return NULL;
}

static void test_versions_attrs_cas(void **state)
{
    (void)state;
    new_bucket("vc");
    put_v("vc", "k", "target", OS_VERSIONING_ENABLED, attr_vid);
    pthread_t t[ATTR_THREADS + 1];
    void *ret;
    for (long i = 0; i < ATTR_THREADS; i++)
        pthread_create(&t[i], NULL, attr_writer, (void *)(intptr_t)i);
    pthread_create(&t[ATTR_THREADS], NULL, version_writer, NULL);
    for (int i = 0; i <= ATTR_THREADS; i++) {
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    /* the fields are not metadata: look at the entry itself */
    json_t *ent = NULL;
    int latest = -1;
    OK(os_locate(B, "vc", "k", attr_vid, &ent, &latest, &E));
    assert_int_equal(latest, 0);
    for (int i = 0; i < ATTR_THREADS; i++) {
        char field[16];
        snprintf(field, sizeof field, "f%d", i);
        assert_int_equal(json_integer_value(json_object_get(ent, field)), ATTR_ROUNDS);
    }
    json_decref(ent);
    assert_version("vc", "k", attr_vid, "target");
    vlist_t l;
    list_all_versions("vc", "", &l);
    assert_int_equal(l.n, ATTR_ROUNDS + 1);
}

/* Removed versions keep their data for readers in flight, then gc takes it. */
static void test_versions_gc(void **state)
{
    (void)state;
    new_bucket("vg");
    char v[3][OS_VERSION_ID_MAX];
    for (int i = 0; i < 3; i++)
        put_v("vg", "k", i == 1 ? "middle" : "edge", OS_VERSIONING_ENABLED, v[i]);
    OK(os_delete(B, "vg", "k", NULL, OS_VERSIONING_ENABLED, NULL, &E));   /* a marker has no data */
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("vg"), 3);
    OK(os_delete(B, "vg", "k", v[1], OS_VERSIONING_ENABLED, NULL, &E));
    OK(os_backend_gc(B, 3600, 3600, &E));   /* within grace: kept */
    assert_int_equal(count_data("vg"), 3);
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("vg"), 2);
    assert_version("vg", "k", v[0], "edge");
    assert_version("vg", "k", v[2], "edge");

    /* a multipart upload completed as a new version keeps the old ones */
    char id[96];
    os_part_ref_t ref = {.number = 1};
    os_meta_t m = {0};
    OK(os_mpu_create(B, "vg", "k", NULL, id, &E));
    upload_part("vg", id, 1, "multipart bytes", 15, ref.etag);
    OK(os_mpu_complete(B, "vg", "k", id, OS_VERSIONING_ENABLED, &ref, 1, NULL, &m, &E));
    assert_int_equal(strlen(m.version_id), VID_LEN);
    char mv[OS_VERSION_ID_MAX];
    snprintf(mv, sizeof mv, "%s", m.version_id);
    os_meta_clear(&m);
    assert_version("vg", "k", NULL, "multipart bytes");
    assert_version("vg", "k", mv, "multipart bytes");
    assert_version("vg", "k", v[2], "edge");
    /* ... and completed while suspended it replaces the null version only */
    put_v("vg", "k", "null one", OS_VERSIONING_SUSPENDED, NULL);
    OK(os_mpu_create(B, "vg", "k", NULL, id, &E));
    upload_part("vg", id, 1, "null two", 8, ref.etag);
    OK(os_mpu_complete(B, "vg", "k", id, OS_VERSIONING_SUSPENDED, &ref, 1, NULL, &m, &E));
    assert_string_equal(m.version_id, "null");
    os_meta_clear(&m);
    vlist_t l;
    list_all_versions("vg", "", &l);
    assert_int_equal(l.n, 5);   /* null, mv, marker, v2, v0 */
    assert_version("vg", "k", "null", "null two");

    for (int i = 0; i < l.n; i++)
        OK(os_delete(B, "vg", "k", l.r[i].vid, OS_VERSIONING_ENABLED, NULL, &E));
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("vg"), 0);
}

/* Index entries written before versioning existed read as the null version, and take
 * part in versioning like any other. */
static void test_versions_old_format(void **state)
{
    (void)state;
    new_bucket("vo");
    write_old_entry("vo", "legacy", "written by an older object store");
    os_meta_t m = {0};
    OK(os_head(B, "vo", "legacy", &m, &E));
    assert_string_equal(m.version_id, "null");
    assert_false(m.delete_marker);
    os_meta_clear(&m);
    assert_version("vo", "legacy", "null", "written by an older object store");
    vlist_t l;
    list_all_versions("vo", "", &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.r[0].vid, "null");
    assert_true(l.r[0].latest);

    char v[OS_VERSION_ID_MAX];
    put_v("vo", "legacy", "new", OS_VERSIONING_ENABLED, v);
    list_all_versions("vo", "", &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.r[0].vid, v);
    assert_string_equal(l.r[1].vid, "null");
    assert_version("vo", "legacy", "null", "written by an older object store");
    json_t *a = json_pack("{s:{s:s}}", "tags", "era", "old");
    OK(os_set_attrs(B, "vo", "legacy", "null", a, &E));
    json_decref(a);
    OK(os_head_version(B, "vo", "legacy", "null", &m, &E));
    assert_string_equal(tag_of(&m, "era"), "old");
    os_meta_clear(&m);
    OK(os_delete(B, "vo", "legacy", v, OS_VERSIONING_ENABLED, NULL, &E));
    assert_version("vo", "legacy", NULL, "written by an older object store");
    OK(os_delete(B, "vo", "legacy", NULL, OS_VERSIONING_OFF, NULL, &E));
    FAILS(os_head(B, "vo", "legacy", &m, &E), "NoSuchKey");
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("vo"), 0);
    OK(os_bucket_delete(B, "vo", &E));
}

/* Versioned writers of one key at the same time: every write is a version, each with its
 * own id, in one strict order; then removers of all of them at the same time. */
#define VTHREADS 4
#define VROUNDS 6

static void *versioned_writer(void *arg)
{
    (void)arg;
    verr_t e;
    for (int i = 0; i < VROUNDS; i++) {
        os_put_t *p;
        os_meta_t m = {0};
        if (os_put_begin(B, "vw", "hot", OS_VERSIONING_ENABLED, &p, &e) || os_put_write(p, "concurrent", 10, &e) ||
            os_put_commit(p, &m, &e))
            return (void *)1;
        os_meta_clear(&m);
    }
    return NULL;
}

static vlist_t vw_list;

static void *version_remover(void *arg)
{
    long t = (long)(intptr_t)arg;
    verr_t e;
    for (int i = (int)t; i < vw_list.n; i += VTHREADS)
        if (os_delete(B, "vw", "hot", vw_list.r[i].vid, OS_VERSIONING_ENABLED, NULL, &e))
            return (void *)1;
    return NULL;
}

static void test_versions_concurrency(void **state)
{
    (void)state;
    new_bucket("vw");
    pthread_t t[VTHREADS];
    void *ret;
    for (long i = 0; i < VTHREADS; i++)
        pthread_create(&t[i], NULL, versioned_writer, (void *)(intptr_t)i);
    for (int i = 0; i < VTHREADS; i++) {
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    list_all_versions("vw", "", &vw_list);
    assert_int_equal(vw_list.n, VTHREADS * VROUNDS);
    for (int i = 0; i < vw_list.n; i++) {
        assert_int_equal(vw_list.r[i].latest, i == 0);
        if (i)
            assert_true(strcmp(vw_list.r[i - 1].vid, vw_list.r[i].vid) < 0);
    }
    assert_int_equal(count_data("vw"), VTHREADS * VROUNDS);
    for (long i = 0; i < VTHREADS; i++)
        pthread_create(&t[i], NULL, version_remover, (void *)(intptr_t)i);
    for (int i = 0; i < VTHREADS; i++) {
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    vlist_t l;
    list_all_versions("vw", "", &l);
    assert_int_equal(l.n, 0);
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_int_equal(count_data("vw"), 0);
    OK(os_bucket_delete(B, "vw", &E));
}

#define OS_VERSION_SCENARIOS                             \
    cmocka_unit_test(test_versions_basic),               \
    cmocka_unit_test(test_versions_null),                \
    cmocka_unit_test(test_versions_listing),             \
    cmocka_unit_test(test_versions_attrs),               \
    cmocka_unit_test(test_versions_attrs_cas),           \
    cmocka_unit_test(test_versions_gc),                  \
    cmocka_unit_test(test_versions_old_format),          \
    cmocka_unit_test(test_versions_concurrency)
