/* os_checksum_scenarios.c - the storage layer's checksums (backend.h), included by
 * test_backend_dir.c so that both backends run them (test_backend_rados.c includes that
 * file). Values are recomputed here from the bytes with common/checksum.c, independently
 * of the writer: a plain write stores CRC64NVME; a write told otherwise stores that
 * algorithm (and can compute another one besides), and the choice is fixed once bytes
 * were written; head and list give the stored value back. Multipart: an upload's chosen
 * algorithm is what its parts store (listed with them); completion gives COMPOSITE
 * (the algorithm over the part digests, "-N") or FULL_OBJECT (the CRC of all the bytes,
 * from the parts' CRCs) as chosen, CRC64NVME full-object when nothing was chosen, and
 * checks the client's listed part values (InvalidPart), stated algorithm / type
 * (InvalidRequest) and whole-object value (BadDigest), none of which leaves an object
 * behind. The directory backend also shows entries and parts written before checksums
 * existed still read, as having none. With versioning, each version keeps its own
 * checksum: read by id, listed, after it became noncurrent, after its tags changed (the
 * checksum itself is no attribute), and a multipart upload completed in a versioned
 * bucket makes a version with the upload's checksum. */

static void b64_of(ck_alg_t a, const void *data, size_t n, char out[CK_B64_MAX])
{
    unsigned char d[CK_MAX_DIGEST];
    ck_compute(a, data, n, d);
    ck_b64(d, ck_digest_len(a), out);
}

static int list_ck(void *arg, const char *key, const os_meta_t *m)
{
    (void)key;
    *(os_checksum_t *)arg = m->ck;
    return 0;
}

static void test_checksum_put(void **state)
{
    (void)state;
    new_bucket("ck");
    size_t n = 300000;
    unsigned char *buf = malloc(n);
    pattern(buf, n, 77);
    char want[CK_B64_MAX];

    /* the default: CRC64NVME, full object */
    os_meta_t m = {0};
    put_chunked("ck", "plain", buf, n, 4097, &m);
    b64_of(CK_CRC64NVME, buf, n, want);
    assert_int_equal(m.ck.alg, CK_CRC64NVME);
    assert_int_equal(m.ck.composite, 0);
    assert_string_equal(m.ck.value, want);
    os_meta_clear(&m);
    OK(os_head(B, "ck", "plain", &m, &E));
    assert_int_equal(m.ck.alg, CK_CRC64NVME);
    assert_string_equal(m.ck.value, want);
    os_meta_clear(&m);

    /* chosen: SHA256 stored, CRC32 computed besides */
    os_put_t *p;
    OK(os_put_begin(B, "ck", "sha", OS_VERSIONING_OFF, &p, &E));
    assert_int_equal(os_put_checksum_alg(p, NULL), CK_CRC64NVME);
    assert_int_equal(os_put_checksum_store(p, CK_SHA256), 0);
    assert_int_equal(os_put_checksum_also(p, CK_CRC32), 0);
    assert_int_equal(os_put_checksum_alg(p, NULL), CK_SHA256);
    OK(os_put_write(p, buf, 1000, &E));
    assert_int_equal(os_put_checksum_store(p, CK_SHA1), -1);   /* too late */
    assert_int_equal(os_put_checksum_also(p, CK_SHA1), -1);
    OK(os_put_write(p, buf + 1000, n - 1000, &E));
    char v[CK_B64_MAX];
    assert_int_equal(os_put_checksum_value(p, CK_CRC32, v), 0);
    b64_of(CK_CRC32, buf, n, want);
    assert_string_equal(v, want);
    assert_int_equal(os_put_checksum_value(p, CK_CRC64NVME, v), -1);   /* replaced, not computed */
    OK(os_put_commit(p, &m, &E));
    b64_of(CK_SHA256, buf, n, want);
    assert_int_equal(m.ck.alg, CK_SHA256);
    assert_string_equal(m.ck.value, want);
    os_meta_clear(&m);
    os_checksum_t listed = {0};
    OK(os_list(B, "ck", "sha", "", 10, list_ck, &listed, NULL, &E));
    assert_int_equal(listed.alg, CK_SHA256);
    assert_string_equal(listed.value, want);

    /* an empty object has checksums too */
    put_chunked("ck", "empty", "", 0, 1, &m);
    assert_string_equal(m.ck.value, "AAAAAAAAAAA=");
    os_meta_clear(&m);
    free(buf);
}

/* One upload of three parts (5 MiB, 5 MiB, 3000 bytes) with checksum choice `ck` (NULL:
 * none). Fills refs (with the parts' values of alg when alg is set) and all[]. */
static void checksum_upload(const char *key, const os_checksum_t *ck, ck_alg_t alg, char id[96],
                            os_part_ref_t refs[3], unsigned char **all, size_t *total)
{
    os_meta_t m = {0};
    if (ck)
        m.ck = *ck;
    OK(os_mpu_create(B, "ckm", key, &m, id, &E));
    size_t len[3] = {5 * MiB, 5 * MiB, 3000};
    *total = len[0] + len[1] + len[2];
    *all = malloc(*total);
    pattern(*all, *total, 9);
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        os_put_t *p;
        OK(os_mpu_part_begin(B, "ckm", id, i + 1, &p, &E));
        int chosen = -1;
        ck_alg_t stored = os_put_checksum_alg(p, &chosen);
        assert_int_equal(stored, ck ? ck->alg : CK_CRC64NVME);
        assert_int_equal(chosen, ck != NULL);
        OK(os_put_write(p, *all + off, len[i], &E));
        OK(os_mpu_part_commit(p, &m, &E));
        char want[CK_B64_MAX];
        b64_of(stored, *all + off, len[i], want);
        assert_int_equal(m.ck.alg, stored);
        assert_string_equal(m.ck.value, want);
        memset(&refs[i], 0, sizeof refs[i]);
        refs[i].number = i + 1;
        snprintf(refs[i].etag, sizeof refs[i].etag, "%s", m.etag);
        if (alg != CK_NONE) {
            refs[i].ck.alg = alg;
            b64_of(alg, *all + off, len[i], refs[i].ck.value);
        }
        os_meta_clear(&m);
        off += len[i];
    }
}

/* An upload of key with checksum choice ck (NULL: none) and one part of the bytes s: its
 * id, and the part as the client lists it (no checksum). */
static void one_part_upload(const char *bucket, const char *key, const os_checksum_t *ck, const char *s, char id[96],
                            os_part_ref_t *ref)
{
    os_meta_t m = {0};
    if (ck)
        m.ck = *ck;
    OK(os_mpu_create(B, bucket, key, &m, id, &E));
    os_put_t *p;
    OK(os_mpu_part_begin(B, bucket, id, 1, &p, &E));
    OK(os_put_write(p, s, strlen(s), &E));
    OK(os_mpu_part_commit(p, &m, &E));
    *ref = (os_part_ref_t){.number = 1};
    snprintf(ref->etag, sizeof ref->etag, "%s", m.etag);
    os_meta_clear(&m);
}

static void test_checksum_multipart(void **state)
{
    (void)state;
    new_bucket("ckm");
    char id[96], want[CK_B64_MAX];
    os_part_ref_t refs[3];
    unsigned char *all;
    size_t total;
    os_meta_t m = {0};

    /* COMPOSITE CRC32: listed with the parts, then crc32 over the part digests, "-3" */
    os_checksum_t comp = {.alg = CK_CRC32, .composite = 1};
    checksum_upload("comp", &comp, CK_CRC32, id, refs, &all, &total);
    parts_seen_t ps = {0};
    os_checksum_t up;
    OK(os_mpu_list_parts(B, "ckm", id, &up, collect_part, &ps, &E));
    assert_int_equal(up.alg, CK_CRC32);
    assert_int_equal(up.composite, 1);
    assert_int_equal(ps.n, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(ps.ck[i], refs[i].ck.value);
    unsigned char digests[12], d4[CK_MAX_DIGEST];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ck_parse(CK_CRC32, refs[i].ck.value, d4), 0);
        memcpy(digests + 4 * i, d4, 4);
    }
    b64_of(CK_CRC32, digests, sizeof digests, want);
    strcat(want, "-3");
    /* the client's values and statements are checked before anything is visible */
    os_part_ref_t wrong[3];
    memcpy(wrong, refs, sizeof wrong);
    wrong[1].ck.value[0] = wrong[1].ck.value[0] == 'A' ? 'B' : 'A';
    FAILS(os_mpu_complete(B, "ckm", "comp", id, OS_VERSIONING_OFF, wrong, 3, NULL, &m, &E), "InvalidPart");
    memcpy(wrong, refs, sizeof wrong);
    wrong[0].ck.alg = CK_CRC32C;
    FAILS(os_mpu_complete(B, "ckm", "comp", id, OS_VERSIONING_OFF, wrong, 3, NULL, &m, &E), "InvalidRequest");
    os_checksum_t stated = {.alg = CK_CRC32, .composite = 0};
    FAILS(os_mpu_complete(B, "ckm", "comp", id, OS_VERSIONING_OFF, refs, 3, &stated, &m, &E), "InvalidRequest");
    stated = (os_checksum_t){.alg = CK_SHA256, .composite = -1};
    FAILS(os_mpu_complete(B, "ckm", "comp", id, OS_VERSIONING_OFF, refs, 3, &stated, &m, &E), "InvalidRequest");
    stated = (os_checksum_t){.alg = CK_CRC32, .composite = 1, .value = "AAAAAA==-3"};
    FAILS(os_mpu_complete(B, "ckm", "comp", id, OS_VERSIONING_OFF, refs, 3, &stated, &m, &E), "BadDigest");
    FAILS(os_head(B, "ckm", "comp", &m, &E), "NoSuchKey");
    snprintf(stated.value, sizeof stated.value, "%s", want);
    OK(os_mpu_complete(B, "ckm", "comp", id, OS_VERSIONING_OFF, refs, 3, &stated, &m, &E));
    assert_int_equal(m.ck.alg, CK_CRC32);
    assert_int_equal(m.ck.composite, 1);
    assert_string_equal(m.ck.value, want);
    os_meta_clear(&m);
    OK(os_head(B, "ckm", "comp", &m, &E));
    assert_string_equal(m.ck.value, want);
    assert_int_equal(m.ck.composite, 1);
    os_meta_clear(&m);
    free(all);

    /* FULL_OBJECT CRC32C: the CRC of all the bytes, from the parts' */
    os_checksum_t full = {.alg = CK_CRC32C, .composite = 0};
    checksum_upload("full", &full, CK_CRC32C, id, refs, &all, &total);
    b64_of(CK_CRC32C, all, total, want);
    stated = (os_checksum_t){.alg = CK_CRC32C, .composite = 0, .value = "AAAAAA=="};
    FAILS(os_mpu_complete(B, "ckm", "full", id, OS_VERSIONING_OFF, refs, 3, &stated, &m, &E), "BadDigest");
    snprintf(stated.value, sizeof stated.value, "%s", want);
    OK(os_mpu_complete(B, "ckm", "full", id, OS_VERSIONING_OFF, refs, 3, &stated, &m, &E));
    assert_int_equal(m.ck.composite, 0);
    assert_string_equal(m.ck.value, want);
    os_meta_clear(&m);
    free(all);

    /* nothing chosen: CRC64NVME of the whole object; parts listed without values are fine */
    checksum_upload("dflt", NULL, CK_NONE, id, refs, &all, &total);
    OK(os_mpu_complete(B, "ckm", "dflt", id, OS_VERSIONING_OFF, refs, 3, NULL, &m, &E));
    b64_of(CK_CRC64NVME, all, total, want);
    assert_int_equal(m.ck.alg, CK_CRC64NVME);
    assert_int_equal(m.ck.composite, 0);
    assert_string_equal(m.ck.value, want);
    os_meta_clear(&m);
    free(all);

    /* SHA1 composite of one part: sha1 of that part's digest, "-1" */
    os_checksum_t sha = {.alg = CK_SHA1, .composite = 1};
    os_part_ref_t one;
    one_part_upload("ckm", "one", &sha, "tiny", id, &one);
    unsigned char d[CK_MAX_DIGEST];
    ck_compute(CK_SHA1, "tiny", 4, d);
    b64_of(CK_SHA1, d, 20, want);
    strcat(want, "-1");
    OK(os_mpu_complete(B, "ckm", "one", id, OS_VERSIONING_OFF, &one, 1, NULL, &m, &E));
    assert_string_equal(m.ck.value, want);
    os_meta_clear(&m);
}

/* A version of key written with checksum algorithm alg stored (CK_NONE: the default). */
static void put_ck_version(const char *key, const char *s, ck_alg_t alg, os_versioning_t vers, os_meta_t *m)
{
    os_put_t *p;
    OK(os_put_begin(B, "ckv", key, vers, &p, &E));
    if (alg != CK_NONE)
        assert_int_equal(os_put_checksum_store(p, alg), 0);
    OK(os_put_write(p, s, strlen(s), &E));
    OK(os_put_commit(p, m, &E));
}

/* The stored checksum of one version (NULL: the latest) is alg over s. */
static void assert_version_ck(const char *key, const char *vid, ck_alg_t alg, const char *s)
{
    char want[CK_B64_MAX];
    b64_of(alg, s, strlen(s), want);
    os_meta_t m = {0};
    OK(os_head_version(B, "ckv", key, vid, &m, &E));
    assert_int_equal(m.ck.alg, alg);
    assert_int_equal(m.ck.composite, 0);
    assert_string_equal(m.ck.value, want);
    os_meta_clear(&m);
    sinkbuf_t b = {0};
    OK(os_read_version(B, "ckv", key, vid, 0, strlen(s), to_buf, &b, &m, &E));
    assert_string_equal(m.ck.value, want);
    os_meta_clear(&m);
    free(b.data);
}

typedef struct ck_versions {
    char vid[8][OS_VERSION_ID_MAX];
    os_checksum_t ck[8];
    int dm[8];
    int n;
} ck_versions_t;

static int collect_ck_version(void *arg, const char *key, const os_meta_t *m)
{
    (void)key;
    ck_versions_t *l = arg;
    if (l->n < 8) {
        snprintf(l->vid[l->n], OS_VERSION_ID_MAX, "%s", m->version_id);
        l->ck[l->n] = m->ck;
        l->dm[l->n++] = m->delete_marker;
    }
    return 0;
}

static void test_checksum_versions(void **state)
{
    (void)state;
    new_bucket("ckv");
    os_meta_t m = {0};
    char v1[OS_VERSION_ID_MAX], v2[OS_VERSION_ID_MAX], vmp[OS_VERSION_ID_MAX], want[CK_B64_MAX];

    /* two versions, each with its own algorithm; the older keeps its own when demoted */
    put_ck_version("k", "first version", CK_SHA256, OS_VERSIONING_ENABLED, &m);
    snprintf(v1, sizeof v1, "%s", m.version_id);
    os_meta_clear(&m);
    put_ck_version("k", "second", CK_NONE, OS_VERSIONING_ENABLED, &m);
    snprintf(v2, sizeof v2, "%s", m.version_id);
    assert_int_equal(m.ck.alg, CK_CRC64NVME);
    os_meta_clear(&m);
    assert_version_ck("k", v1, CK_SHA256, "first version");
    assert_version_ck("k", v2, CK_CRC64NVME, "second");
    assert_version_ck("k", NULL, CK_CRC64NVME, "second");

    /* tags change, the checksum does not; the checksum cannot be set as an attribute */
    json_t *a = json_pack("{s:{s:s}}", "tags", "t", "1");
    OK(os_set_attrs(B, "ckv", "k", v1, a, &E));
    json_decref(a);
    assert_version_ck("k", v1, CK_SHA256, "first version");
    a = json_pack("{s:{s:s, s:s, s:s}}", "ck", "a", "CRC32", "t", "FULL_OBJECT", "v", "AAAAAA==");
    FAILS(os_set_attrs(B, "ckv", "k", v1, a, &E), "InvalidArgument");
    FAILS(os_set_attrs(B, "ckv", "k", NULL, a, &E), "InvalidArgument");
    json_decref(a);
    assert_version_ck("k", v1, CK_SHA256, "first version");
    assert_version_ck("k", v2, CK_CRC64NVME, "second");

    /* suspended: the null version written with CRC32; the real versions keep theirs */
    put_ck_version("k", "null one", CK_CRC32, OS_VERSIONING_SUSPENDED, &m);
    assert_string_equal(m.version_id, "null");
    os_meta_clear(&m);
    assert_version_ck("k", "null", CK_CRC32, "null one");
    assert_version_ck("k", v1, CK_SHA256, "first version");

    /* a multipart upload completed in a versioned bucket: a new version with the
     * upload's full-object CRC32C, checked against the client's statement */
    char id[96];
    os_part_ref_t one;
    one_part_upload("ckv", "k", &(os_checksum_t){.alg = CK_CRC32C}, "multipart version", id, &one);
    os_checksum_t stated = {.alg = CK_CRC32C, .composite = 0, .value = "AAAAAA=="};
    FAILS(os_mpu_complete(B, "ckv", "k", id, OS_VERSIONING_ENABLED, &one, 1, &stated, &m, &E), "BadDigest");
    b64_of(CK_CRC32C, "multipart version", 17, stated.value);
    OK(os_mpu_complete(B, "ckv", "k", id, OS_VERSIONING_ENABLED, &one, 1, &stated, &m, &E));
    assert_int_equal(strlen(m.version_id), 32);
    assert_string_equal(m.ck.value, stated.value);
    snprintf(vmp, sizeof vmp, "%s", m.version_id);
    os_meta_clear(&m);
    assert_version_ck("k", vmp, CK_CRC32C, "multipart version");
    assert_version_ck("k", "null", CK_CRC32, "null one");

    /* a delete marker has no checksum; the versions under it keep theirs */
    os_meta_t out = {0};
    OK(os_delete(B, "ckv", "k", NULL, OS_VERSIONING_ENABLED, &out, &E));
    OK(os_head_version(B, "ckv", "k", out.version_id, &m, &E));
    assert_true(m.delete_marker);
    assert_int_equal(m.ck.alg, CK_NONE);
    os_meta_clear(&m);
    assert_version_ck("k", vmp, CK_CRC32C, "multipart version");

    /* ListObjectVersions gives each version's checksum, newest first */
    ck_versions_t l = {0};
    OK(os_list_versions(B, "ckv", "", "", NULL, 100, collect_ck_version, &l, NULL, &E));
    assert_int_equal(l.n, 5);
    assert_true(l.dm[0]);
    assert_int_equal(l.ck[0].alg, CK_NONE);
    const char *vids[] = {vmp, "null", v2, v1};
    const ck_alg_t algs[] = {CK_CRC32C, CK_CRC32, CK_CRC64NVME, CK_SHA256};
    const char *bodies[] = {"multipart version", "null one", "second", "first version"};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(l.vid[i + 1], vids[i]);
        assert_int_equal(l.ck[i + 1].alg, algs[i]);
        b64_of(algs[i], bodies[i], strlen(bodies[i]), want);
        assert_string_equal(l.ck[i + 1].value, want);
    }
}

#ifndef OS_TEST_EXTERNAL_SETUP
/* Rewrite a JSON record file without one member, as records were before it existed. */
static void drop_member(const char *path, const char *member)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_object_del(j, member), 0);
    assert_int_equal(json_dump_file(j, path, JSON_COMPACT), 0);
    json_decref(j);
}

static void test_checksum_old_records(void **state)
{
    (void)state;
    new_bucket("cko");
    put_str("cko", "k", "old object");   /* index/cko/<hex "k">.json */
    char path[512];
    snprintf(path, sizeof path, "%s/index/cko/6b.json", tmpdir);
    drop_member(path, "ck");
    os_meta_t m = {0};
    OK(os_head(B, "cko", "k", &m, &E));
    assert_int_equal(m.ck.alg, CK_NONE);
    assert_string_equal(m.etag, "3a72a162ee7258f8bd31e3e39116a406");
    os_meta_clear(&m);
    assert_content("cko", "k", "old object", 10);

    /* a part from before checksums: the completed object has none */
    char id[96];
    os_part_ref_t one;
    one_part_upload("cko", "mp", NULL, "part", id, &one);
    snprintf(path, sizeof path, "%s/uploads/cko/%s/00001.json", tmpdir, id);
    drop_member(path, "cks");
    OK(os_mpu_complete(B, "cko", "mp", id, OS_VERSIONING_OFF, &one, 1, NULL, &m, &E));
    assert_int_equal(m.ck.alg, CK_NONE);
    os_meta_clear(&m);
    assert_content("cko", "mp", "part", 4);
}
#define OS_OLD_RECORD_SCENARIO cmocka_unit_test(test_checksum_old_records),
#else
#define OS_OLD_RECORD_SCENARIO
#endif

#define OS_CHECKSUM_SCENARIOS                                           \
    cmocka_unit_test(test_checksum_put), cmocka_unit_test(test_checksum_multipart),       \
        cmocka_unit_test(test_checksum_versions), OS_OLD_RECORD_SCENARIO
