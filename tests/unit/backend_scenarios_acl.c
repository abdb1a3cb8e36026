/* backend_scenarios_acl.c - the object ACL (os_meta acl, the index entry's "acl") as both
 * backends keep it, included by tests/unit/test_backend_dir.c (so the RADOS contract
 * suite runs it too). Each version keeps its own ACL: it is written with the version,
 * carried through a multipart upload, stays with a version that becomes noncurrent, is
 * changed in place by os_set_attrs on that version alone (data, ETag and mtime
 * untouched), and a delete marker has none. */

/* The owner named by a version's ACL ("(none)" when it has no ACL). */
static const char *acl_owner(const char *bucket, const char *key, const char *vid)
{
    static char owner[64];
    os_meta_t m = {0};
    OK(os_head_version(B, bucket, key, vid, &m, &E));
    snprintf(owner, sizeof owner, "%s", m.acl ? json_string_value(json_object_get(m.acl, "owner")) : "(none)");
    os_meta_clear(&m);
    return owner;
}

/* Write s as a new version of key whose ACL names owner; its id into vid. */
static void put_acl(const char *bucket, const char *key, const char *s, os_versioning_t vers, const char *owner,
                    char vid[OS_VERSION_ID_MAX])
{
    os_put_t *p;
    os_meta_t m = {0};
    m.acl = json_pack("{s:s, s:[{s:s, s:s}]}", "owner", owner, "grants", "g", owner, "p", "FULL_CONTROL");
    OK(os_put_begin(B, bucket, key, vers, &p, &E));
    OK(os_put_write(p, s, strlen(s), &E));
    OK(os_put_commit(p, &m, &E));
    if (vid)
        snprintf(vid, OS_VERSION_ID_MAX, "%s", m.version_id);
    os_meta_clear(&m);
}

static json_t *acl_attrs(const char *owner, const char *public_grant)
{
    json_t *grants = json_pack("[{s:s, s:s}]", "g", owner, "p", "FULL_CONTROL");
    if (public_grant)
        json_array_append_new(grants, json_pack("{s:s, s:s}", "g", "AllUsers", "p", public_grant));
    return json_pack("{s:{s:s, s:o}}", "acl", "owner", owner, "grants", grants);
}

static int list_acl_cb(void *arg, const char *key, const os_meta_t *m)
{
    json_t *seen = arg;
    (void)key;
    json_object_set_new(seen, m->version_id, json_string(m->acl ? json_str(m->acl, "owner", "?") : "(none)"));
    return 0;
}

static void test_acl_in_place(void **state)
{
    (void)state;
    new_bucket("at");
    put_acl("at", "obj", "some bytes", OS_VERSIONING_OFF, "111122223333", NULL);
    os_meta_t m = {0};
    OK(os_head(B, "at", "obj", &m, &E));
    char etag[72];
    snprintf(etag, sizeof etag, "%s", m.etag);
    int64_t mtime = m.mtime;
    os_meta_clear(&m);
    assert_string_equal(acl_owner("at", "obj", NULL), "111122223333");

    json_t *a = acl_attrs("111122223333", "READ");
    OK(os_set_attrs(B, "at", "obj", NULL, a, &E));
    json_decref(a);
    OK(os_head(B, "at", "obj", &m, &E));
    assert_string_equal(m.etag, etag);
    assert_int_equal(m.mtime, mtime);
    assert_int_equal(m.size, 10);
    assert_int_equal(json_array_size(json_object_get(m.acl, "grants")), 2);
    os_meta_clear(&m);
    assert_content("at", "obj", "some bytes", 10);
    OK(os_backend_gc(B, 0, 3600, &E));
    assert_content("at", "obj", "some bytes", 10);   /* the data was never garbage */

    /* a large object, and an upload that carries its ACL to completion */
    size_t n = 5 * MiB + 3;
    unsigned char *big = malloc(n);
    pattern(big, n, 9);
    put_chunked("at", "big", big, n, 1 << 20, &m);
    os_meta_clear(&m);
    a = acl_attrs("big-owner", NULL);
    OK(os_set_attrs(B, "at", "big", NULL, a, &E));
    json_decref(a);
    assert_string_equal(acl_owner("at", "big", NULL), "big-owner");
    assert_content("at", "big", big, n);
    char id[96], petag[72];
    m.acl = json_pack("{s:s}", "owner", "uploader");
    OK(os_mpu_create(B, "at", "mp", &m, id, &E));
    os_meta_clear(&m);
    upload_part("at", id, 1, big, n, petag);
    os_part_ref_t ref = {.number = 1};
    snprintf(ref.etag, sizeof ref.etag, "%s", petag);
    OK(os_mpu_complete(B, "at", "mp", id, OS_VERSIONING_OFF, &ref, 1, NULL, &m, &E));
    os_meta_clear(&m);
    assert_string_equal(acl_owner("at", "mp", NULL), "uploader");
    a = acl_attrs("changed", NULL);
    OK(os_set_attrs(B, "at", "mp", NULL, a, &E));
    json_decref(a);
    assert_string_equal(acl_owner("at", "mp", NULL), "changed");
    assert_content("at", "mp", big, n);
    free(big);
}

static void test_acl_versions(void **state)
{
    (void)state;
    new_bucket("av");
    char v1[OS_VERSION_ID_MAX], v2[OS_VERSION_ID_MAX];
    put_acl("av", "k", "one", OS_VERSIONING_ENABLED, "111111111111", v1);
    put_acl("av", "k", "two", OS_VERSIONING_ENABLED, "222222222222", v2);
    /* the noncurrent version keeps the ACL it was written with */
    assert_string_equal(acl_owner("av", "k", v1), "111111111111");
    assert_string_equal(acl_owner("av", "k", NULL), "222222222222");

    /* an ACL set on one version (by id) changes that version alone, never its bytes */
    json_t *a = acl_attrs("111111111111", "READ");
    OK(os_set_attrs(B, "av", "k", v1, a, &E));
    json_decref(a);
    os_meta_t m = {0};
    OK(os_head_version(B, "av", "k", v1, &m, &E));
    assert_int_equal(json_array_size(json_object_get(m.acl, "grants")), 2);
    assert_int_equal(m.size, 3);
    os_meta_clear(&m);
    OK(os_head(B, "av", "k", &m, &E));
    assert_int_equal(json_array_size(json_object_get(m.acl, "grants")), 1);
    assert_string_equal(m.version_id, v2);
    os_meta_clear(&m);
    assert_version("av", "k", v1, "one");
    assert_version("av", "k", NULL, "two");

    /* a delete marker has no ACL and takes none */
    os_meta_t out = {0};
    OK(os_delete(B, "av", "k", NULL, OS_VERSIONING_ENABLED, &out, &E));
    assert_true(out.delete_marker);
    assert_string_equal(acl_owner("av", "k", out.version_id), "(none)");
    a = acl_attrs("333333333333", NULL);
    FAILS(os_set_attrs(B, "av", "k", NULL, a, &E), "NoSuchKey");
    FAILS(os_set_attrs(B, "av", "k", out.version_id, a, &E), "MethodNotAllowed");
    json_decref(a);
    /* ... and the versions under it keep theirs */
    assert_string_equal(acl_owner("av", "k", v2), "222222222222");

    /* a listing of versions shows each version's own ACL */
    json_t *seen = json_object();
    OK(os_list_versions(B, "av", "", "", NULL, 100, list_acl_cb, seen, NULL, &E));
    assert_int_equal(json_object_size(seen), 3);
    assert_string_equal(json_str(seen, v1, ""), "111111111111");
    assert_string_equal(json_str(seen, v2, ""), "222222222222");
    assert_string_equal(json_str(seen, out.version_id, ""), "(none)");
    json_decref(seen);

    /* removing the marker makes v2 the latest again, with its ACL */
    OK(os_delete(B, "av", "k", out.version_id, OS_VERSIONING_ENABLED, NULL, &E));
    assert_string_equal(acl_owner("av", "k", NULL), "222222222222");

    /* suspended: the null version is replaced with its new ACL, the others keep theirs */
    put_acl("av", "k", "null one", OS_VERSIONING_SUSPENDED, "444444444444", NULL);
    assert_string_equal(acl_owner("av", "k", "null"), "444444444444");
    a = acl_attrs("444444444444", "READ");
    OK(os_set_attrs(B, "av", "k", "null", a, &E));
    json_decref(a);
    OK(os_head_version(B, "av", "k", "null", &m, &E));
    assert_int_equal(json_array_size(json_object_get(m.acl, "grants")), 2);
    os_meta_clear(&m);
    assert_string_equal(acl_owner("av", "k", v1), "111111111111");
    assert_string_equal(acl_owner("av", "k", v2), "222222222222");
}

#define OS_ACL_SCENARIOS cmocka_unit_test(test_acl_in_place), cmocka_unit_test(test_acl_versions),
