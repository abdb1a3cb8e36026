/* backend_scenarios_read.c - reading one opened version whole, and reaping the writes of
 * a writer that is gone: scenarios of the backend contract, included by
 * test_backend_dir.c after backend_scenarios_versions.c (and so also run on RADOS by
 * test_backend_rados.c). The includer provides B, E, OK/FAILS, the put helpers, put_v
 * and count_data.
 *
 * Covered: a version opened before an overwrite, a delete and gc within grace reads
 * whole and as it was (pushed with os_object_read, pulled with os_reader, whole or
 * ranged, across stripes and multipart parts), and fails once gc is past grace instead of
 * handing out other bytes; the same for versions named by id and for the latest in a
 * versioned bucket, with their own checksums, and a delete marker opened as such; writes
 * of a dead writer reaped after the lease, unmarked and live writers' writes kept. */

/* ---- one version, read whole ---- */

static void read_all(os_reader_t *r, size_t max, sinkbuf_t *s)
{
    char *buf = malloc(max);
    long n;
    while ((n = os_reader_read(r, buf, max, &E)) > 0)
        to_buf(s, buf, (size_t)n);
    assert_int_equal(n, 0);
    free(buf);
}

/* A version opened before an overwrite, a delete and gc within grace reads whole and as it
 * was, pushed or pulled, whole or ranged, with its own metadata; once gc is past grace
 * the read fails instead of handing out other bytes. A multipart version reads across
 * its parts. */
static void test_open_version(void **state)
{
    (void)state;
    new_bucket("ver");
    size_t n = 9 * MiB + 17;
    os_meta_t m = {0};
    unsigned char *old = put_pattern("ver", "k", n, 11, MiB, &m);
    char old_etag[72];
    snprintf(old_etag, sizeof old_etag, "%s", m.etag);
    os_meta_clear(&m);
    os_object_t *o1, *o2, *o3;
    OK(os_open(B, "ver", "k", &o1, &m, &E));
    assert_string_equal(m.etag, old_etag);
    assert_int_equal(m.size, n);
    os_meta_clear(&m);
    OK(os_open(B, "ver", "k", &o2, NULL, &E));
    OK(os_open(B, "ver", "k", &o3, NULL, &E));
    assert_int_equal(os_object_size(o1), n);
    FAILS(os_open(B, "ver", "nope", &o1, NULL, &E), "NoSuchKey");

    put_str("ver", "k", "new");
    OK(os_delete(B, "ver", "k", NULL, OS_VERSIONING_OFF, NULL, &E));
    OK(os_backend_gc(B, 3600, 3600, &E));
    FAILS(os_head(B, "ver", "k", &m, &E), "NoSuchKey");

    sinkbuf_t s = {0};
    OK(os_object_read(o1, 0, n, to_buf, &s, &E));
    assert_int_equal(s.len, n);
    assert_memory_equal(s.data, old, n);
    free(s.data);
    os_object_close(o1);

    uint64_t off = 4 * MiB - 3, len = 3 * MiB + 5;   /* across a stripe boundary */
    os_reader_t *r = os_reader_new(o2, off, len);
    s = (sinkbuf_t){0};
    read_all(r, 100003, &s);
    assert_int_equal(s.len, len);
    assert_memory_equal(s.data, old + off, len);
    free(s.data);
    os_reader_free(r);

    OK(os_backend_gc(B, 0, 3600, &E));   /* past grace: that version's bytes are gone */
    s = (sinkbuf_t){0};
    memset(&E, 0, sizeof E);
    assert_int_equal(os_object_read(o3, 0, n, to_buf, &s, &E), -1);
    assert_true(E.code[0] != '\0');
    free(s.data);
    os_object_close(o3);

    /* a multipart version, pulled in small pieces across its parts */
    char id[96];
    os_part_ref_t refs[2];
    memset(refs, 0, sizeof refs);
    OK(os_mpu_create(B, "ver", "mp", NULL, id, &E));
    refs[0].number = 1, refs[1].number = 2;
    upload_part("ver", id, 1, old, 5 * MiB, refs[0].etag);
    upload_part("ver", id, 2, old + 5 * MiB, 1000, refs[1].etag);
    OK(os_mpu_complete(B, "ver", "mp", id, OS_VERSIONING_OFF, refs, 2, NULL, &m, &E));
    os_meta_clear(&m);
    OK(os_open(B, "ver", "mp", &o1, &m, &E));
    assert_int_equal(m.size, 5 * MiB + 1000);
    os_meta_clear(&m);
    r = os_reader_new(o1, 0, UINT64_MAX);   /* clamped to the version's size */
    s = (sinkbuf_t){0};
    read_all(r, 65536, &s);
    assert_int_equal(s.len, 5 * MiB + 1000);
    assert_memory_equal(s.data, old, 5 * MiB + 1000);
    free(s.data);
    os_reader_free(r);
    free(old);

    os_health_t h;
    os_backend_health(B, &h);
    assert_true(h.ok);
}

/* A write of n bytes as a new version in a bucket in state vers; its meta into m. */
static void put_bytes_v(const char *bucket, const char *key, const void *data, size_t n, os_versioning_t vers,
                        os_meta_t *m)
{
    os_put_t *p;
    OK(os_put_begin(B, bucket, key, vers, &p, &E));
    OK(os_put_write(p, data, n, &E));
    OK(os_put_commit(p, m, &E));
}

static void assert_reads(os_object_t *o, const unsigned char *want, size_t n)
{
    sinkbuf_t s = {0};
    OK(os_object_read(o, 0, n, to_buf, &s, &E));
    assert_int_equal(s.len, n);
    assert_memory_equal(s.data, want, n);
    free(s.data);
}

/* In a versioned bucket: the latest and a version named by id, opened before newer
 * versions, a delete marker and gc within grace, read whole and as they were, each with
 * its own metadata and checksum; the delete marker opens as such (no bytes: reading it
 * is MethodNotAllowed) while os_open of the latest is NoSuchKey; a version removed for
 * good reads on until gc is past grace, then fails. */
static void test_open_versions(void **state)
{
    (void)state;
    new_bucket("vr");
    size_t n = 5 * MiB + 3;
    unsigned char *a = malloc(n), *b = malloc(n);
    pattern(a, n, 31);
    pattern(b, n, 32);
    os_meta_t ma = {0}, mb = {0}, m = {0};
    put_bytes_v("vr", "k", a, n, OS_VERSIONING_ENABLED, &ma);
    assert_int_not_equal(ma.ck.alg, CK_NONE);

    os_object_t *by_id, *latest, *second, *dm, *doomed;
    OK(os_open_version(B, "vr", "k", ma.version_id, &by_id, &m, &E));
    assert_string_equal(m.version_id, ma.version_id);
    assert_true(m.is_latest);
    assert_false(m.delete_marker);
    os_meta_clear(&m);
    OK(os_open(B, "vr", "k", &latest, &m, &E));
    assert_string_equal(m.version_id, ma.version_id);
    assert_int_equal(m.ck.alg, ma.ck.alg);
    assert_string_equal(m.ck.value, ma.ck.value);
    os_meta_clear(&m);
    OK(os_open_version(B, "vr", "k", ma.version_id, &doomed, NULL, &E));

    put_bytes_v("vr", "k", b, n, OS_VERSIONING_ENABLED, &mb);
    assert_string_not_equal(mb.ck.value, ma.ck.value);
    os_meta_t del = {0};
    OK(os_delete(B, "vr", "k", NULL, OS_VERSIONING_ENABLED, &del, &E));
    assert_true(del.delete_marker);
    OK(os_backend_gc(B, 3600, 3600, &E));

    FAILS(os_open(B, "vr", "k", &dm, &m, &E), "NoSuchKey");
    OK(os_open_version(B, "vr", "k", NULL, &dm, &m, &E));
    assert_true(m.delete_marker);
    assert_true(m.is_latest);
    assert_string_equal(m.version_id, del.version_id);
    os_meta_clear(&m);
    assert_int_equal(os_object_size(dm), 0);
    sinkbuf_t s = {0};
    FAILS(os_object_read(dm, 0, 1, to_buf, &s, &E), "MethodNotAllowed");
    os_object_close(dm);
    OK(os_open_version(B, "vr", "k", mb.version_id, &second, &m, &E));
    assert_false(m.is_latest);
    assert_string_equal(m.ck.value, mb.ck.value);
    os_meta_clear(&m);

    assert_reads(by_id, a, n);
    os_object_close(by_id);
    os_reader_t *r = os_reader_new(latest, 1, n - 2);   /* pulled, ranged */
    s = (sinkbuf_t){0};
    read_all(r, 70001, &s);
    assert_int_equal(s.len, n - 2);
    assert_memory_equal(s.data, a + 1, n - 2);
    free(s.data);
    os_reader_free(r);
    assert_reads(second, b, n);
    os_object_close(second);

    /* removed for good: readable within grace, then gone */
    OK(os_delete(B, "vr", "k", ma.version_id, OS_VERSIONING_ENABLED, NULL, &E));
    FAILS(os_head_version(B, "vr", "k", ma.version_id, &m, &E), "NoSuchVersion");
    OK(os_backend_gc(B, 3600, 3600, &E));
    assert_reads(doomed, a, n);
    OK(os_backend_gc(B, 0, 3600, &E));
    s = (sinkbuf_t){0};
    memset(&E, 0, sizeof E);
    assert_int_equal(os_object_read(doomed, 0, n, to_buf, &s, &E), -1);
    assert_true(E.code[0] != '\0');
    free(s.data);
    os_object_close(doomed);
    os_meta_clear(&ma);
    os_meta_clear(&mb);
    os_meta_clear(&del);
    free(a);
    free(b);
}

/* ---- writes of a writer that is gone ---- */

static const char *dead_writer;

static int writer_alive(void *arg, const char *writer)
{
    (void)arg;
    return !dead_writer || strcmp(writer, dead_writer) != 0;
}

/* Writes marked by a writer that gc is told is gone are reaped once older than the
 * lease, without waiting for stale_s; they can no longer commit. Unmarked writes and
 * those of live writers stay. */
static void test_dead_writer(void **state)
{
    (void)state;
    new_bucket("dw");
    size_t n = 6 * MiB;
    unsigned char *buf = malloc(n);
    pattern(buf, n, 21);
    char id[96];
    OK(os_mpu_create(B, "dw", "m", NULL, id, &E));
    os_put_t *p, *q, *u;
    os_backend_set_writer(B, "d0d0");
    OK(os_put_begin(B, "dw", "k", OS_VERSIONING_OFF, &p, &E));
    OK(os_put_write(p, buf, n, &E));
    OK(os_mpu_part_begin(B, "dw", id, 1, &q, &E));
    OK(os_put_write(q, buf, n, &E));
    os_backend_set_writer(B, "");
    OK(os_put_begin(B, "dw", "unmarked", OS_VERSIONING_OFF, &u, &E));
    OK(os_put_write(u, buf, n, &E));
    sleep(1);   /* the data written so far has landed */
    int all = count_data("dw"), unmarked_only;
    assert_true(all >= 3);

    os_gc_opts_t o = {3600, 3600, 0, writer_alive, NULL, NULL};
    dead_writer = NULL;   /* everybody alive */
    OK(os_backend_gc_run(B, &o, &E));
    assert_int_equal(count_data("dw"), all);
    dead_writer = "d0d0";
    o.lease_s = 3600;     /* gone, but its writes are younger than the lease */
    OK(os_backend_gc_run(B, &o, &E));
    assert_int_equal(count_data("dw"), all);
    o.lease_s = 0;
    OK(os_backend_gc_run(B, &o, &E));
    unmarked_only = count_data("dw");
    assert_true(unmarked_only >= 1 && unmarked_only < all);

    os_meta_t m = {0};
    FAILS(os_put_commit(p, &m, &E), "RequestTimeout");
    FAILS(os_mpu_part_commit(q, &m, &E), "RequestTimeout");
    FAILS(os_head(B, "dw", "k", &m, &E), "NoSuchKey");
    assert_int_equal(count_data("dw"), unmarked_only);
    OK(os_put_commit(u, &m, &E));   /* the unmarked write was left alone */
    os_meta_clear(&m);
    assert_content("dw", "unmarked", buf, n);
    OK(os_mpu_abort(B, "dw", id, &E));
    dead_writer = NULL;
    free(buf);
}

#define OS_READ_SCENARIOS                                \
    cmocka_unit_test(test_open_version),                 \
    cmocka_unit_test(test_open_versions),                \
    cmocka_unit_test(test_dead_writer),
