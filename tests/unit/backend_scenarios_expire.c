/* backend_scenarios_expire.c - os_expire, the lifecycle pass's delete, in the backend
 * contract: included by test_backend_dir.c after backend_scenarios_versions.c (whose
 * helpers it uses), so it runs on the directory backend and, through
 * test_backend_rados.c, on RADOS.
 *
 * Each kind acts only while the version is still what the pass listed: CURRENT deletes
 * the latest version (never-versioned: gone; versioned: one delete marker, not two when
 * run twice) but not a version written after the listing; NONCURRENT removes a noncurrent
 * version for good (the null one too) but not one that became the latest again;
 * LONE_MARKER removes a delete marker only while it is its key's only version. */

static void head_v(const char *bucket, const char *key, const char *vid, os_meta_t *m)
{
    memset(m, 0, sizeof *m);
    OK(os_head_version(B, bucket, key, vid, m, &E));
}

static void test_expire_current(void **state)
{
    (void)state;
    new_bucket("xc");
    os_meta_t seen, m;
    int done = -1;
    /* never versioned: an overwrite after the listing is not expired */
    put_v("xc", "k", "listed", OS_VERSIONING_OFF, NULL);
    head_v("xc", "k", NULL, &seen);
    put_v("xc", "k", "written later", OS_VERSIONING_OFF, NULL);
    OK(os_expire(B, "xc", "k", OS_EXPIRE_CURRENT, &seen, OS_VERSIONING_OFF, &done, &E));
    assert_int_equal(done, 0);
    assert_version("xc", "k", NULL, "written later");
    os_meta_clear(&seen);
    head_v("xc", "k", NULL, &seen);
    OK(os_expire(B, "xc", "k", OS_EXPIRE_CURRENT, &seen, OS_VERSIONING_OFF, &done, &E));
    assert_int_equal(done, 1);
    FAILS(os_head(B, "xc", "k", &m, &E), "NoSuchKey");
    OK(os_expire(B, "xc", "k", OS_EXPIRE_CURRENT, &seen, OS_VERSIONING_OFF, &done, &E));
    assert_int_equal(done, 0);
    os_meta_clear(&seen);

    /* versioned: a delete marker on top, once, however often it runs */
    char v1[OS_VERSION_ID_MAX];
    put_v("xc", "v", "one", OS_VERSIONING_ENABLED, v1);
    head_v("xc", "v", NULL, &seen);
    for (int i = 0; i < 2; i++) {
        OK(os_expire(B, "xc", "v", OS_EXPIRE_CURRENT, &seen, OS_VERSIONING_ENABLED, &done, &E));
        assert_int_equal(done, i == 0);
    }
    vlist_t l;
    list_all_versions("xc", "v", &l);
    assert_int_equal(l.n, 2);
    assert_true(l.r[0].dm && l.r[0].latest);
    assert_string_equal(l.r[1].vid, v1);
    os_meta_clear(&seen);
}

static void test_expire_noncurrent(void **state)
{
    (void)state;
    new_bucket("xn");
    os_meta_t seen, m;
    int done = -1;
    char v1[OS_VERSION_ID_MAX], v2[OS_VERSION_ID_MAX], v3[OS_VERSION_ID_MAX];
    put_v("xn", "k", "one", OS_VERSIONING_ENABLED, v1);
    put_v("xn", "k", "two", OS_VERSIONING_ENABLED, v2);
    head_v("xn", "k", v1, &seen);
    assert_false(seen.is_latest);
    /* its successor removed: v1 is the latest again and stays */
    OK(os_delete(B, "xn", "k", v2, OS_VERSIONING_ENABLED, NULL, &E));
    OK(os_expire(B, "xn", "k", OS_EXPIRE_NONCURRENT, &seen, OS_VERSIONING_ENABLED, &done, &E));
    assert_int_equal(done, 0);
    assert_version("xn", "k", v1, "one");
    /* noncurrent again: removed for good, the latest untouched */
    put_v("xn", "k", "three", OS_VERSIONING_ENABLED, v3);
    OK(os_expire(B, "xn", "k", OS_EXPIRE_NONCURRENT, &seen, OS_VERSIONING_ENABLED, &done, &E));
    assert_int_equal(done, 1);
    FAILS(os_head_version(B, "xn", "k", v1, &m, &E), "NoSuchVersion");
    assert_version("xn", "k", NULL, "three");
    os_meta_clear(&seen);

    /* the null version, noncurrent under a versioned write */
    put_v("xn", "n", "null one", OS_VERSIONING_SUSPENDED, NULL);
    put_v("xn", "n", "versioned", OS_VERSIONING_ENABLED, NULL);
    head_v("xn", "n", "null", &seen);
    OK(os_expire(B, "xn", "n", OS_EXPIRE_NONCURRENT, &seen, OS_VERSIONING_ENABLED, &done, &E));
    assert_int_equal(done, 1);
    FAILS(os_head_version(B, "xn", "n", "null", &m, &E), "NoSuchVersion");
    assert_version("xn", "n", NULL, "versioned");
    os_meta_clear(&seen);
}

static void test_expire_lone_marker(void **state)
{
    (void)state;
    new_bucket("xm");
    os_meta_t seen, out = {0};
    int done = -1;
    char v1[OS_VERSION_ID_MAX];
    put_v("xm", "k", "one", OS_VERSIONING_ENABLED, v1);
    OK(os_delete(B, "xm", "k", NULL, OS_VERSIONING_ENABLED, &out, &E));
    assert_true(out.delete_marker);
    head_v("xm", "k", out.version_id, &seen);
    assert_true(seen.delete_marker);
    /* another version remains under it: not expired */
    OK(os_expire(B, "xm", "k", OS_EXPIRE_LONE_MARKER, &seen, OS_VERSIONING_ENABLED, &done, &E));
    assert_int_equal(done, 0);
    OK(os_delete(B, "xm", "k", v1, OS_VERSIONING_ENABLED, NULL, &E));
    OK(os_expire(B, "xm", "k", OS_EXPIRE_LONE_MARKER, &seen, OS_VERSIONING_ENABLED, &done, &E));
    assert_int_equal(done, 1);
    vlist_t l;
    list_all_versions("xm", "", &l);
    assert_int_equal(l.n, 0);
    OK(os_bucket_delete(B, "xm", &E));   /* nothing left behind */
    os_meta_clear(&seen);
}

#define OS_EXPIRE_SCENARIOS                                                                  \
    cmocka_unit_test(test_expire_current), cmocka_unit_test(test_expire_noncurrent),        \
        cmocka_unit_test(test_expire_lone_marker),
