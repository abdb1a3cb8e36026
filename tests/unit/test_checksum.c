/* test_checksum.c - unit tests for common/crc.c and common/checksum.c: the three CRCs give
 * their catalogued check values for "123456789" and the values today's SDKs send for
 * "hello world" (CRC32 DUoRhQ==, SHA256 uU0n..., CRC64NVME jSnVw/bqjr4= as the AWS SDK for
 * JavaScript computes it); updates chain over any split (every split point of a buffer,
 * unaligned starts, 1-byte pieces) to the one-shot value; combine(crc(a), crc(b), len(b))
 * equals crc(a||b) for every split of a buffer and for empty parts; the folding path
 * (PCLMULQDQ, long buffers) equals the byte-at-a-time tables for every length up to 700
 * at every start alignment; a ck_state computing
 * all five algorithms at once gives each its one-shot digest; base64 parsing accepts
 * exactly the digest length of its algorithm (not one byte more or less, not unpadded or
 * non-base64 text); names and headers map both ways, case-insensitively; and an algorithm
 * cannot be added once bytes were fed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checksum.h"
#include "crc.h"

static void test_check_values(void **state)
{
    (void)state;
    assert_int_equal(crc32_update(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(crc32c_update(0, "123456789", 9), 0xE3069283u);
    assert_true(crc64nvme_update(0, "123456789", 9) == 0xAE8B14860A799888ull);
    assert_int_equal(crc32_update(0, "", 0), 0);
    assert_true(crc64nvme_update(0, NULL, 0) == 0);
}

static void test_sdk_values(void **state)
{
    (void)state;
    struct { ck_alg_t a; const char *b64; } v[] = {
        {CK_CRC32, "DUoRhQ=="},
        {CK_CRC32C, "yZRlqg=="},
        {CK_CRC64NVME, "jSnVw/bqjr4="},
        {CK_SHA1, "Kq5sNclPz7QV2+lfQIuc6R7oRu0="},
        {CK_SHA256, "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        unsigned char d[CK_MAX_DIGEST];
        char b64[CK_B64_MAX];
        ck_compute(v[i].a, "hello world", 11, d);
        ck_b64(d, ck_digest_len(v[i].a), b64);
        assert_string_equal(b64, v[i].b64);
    }
}

static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (unsigned char)(x >> 16);
    }
    return b;
}

static void test_chaining_any_split(void **state)
{
    (void)state;
    size_t n = 1000;
    unsigned char *b = pattern(n);
    uint32_t w32 = crc32_update(0, b, n), w32c = crc32c_update(0, b, n);
    uint64_t w64 = crc64nvme_update(0, b, n);
    for (size_t cut = 0; cut <= n; cut++) {
        assert_int_equal(crc32_update(crc32_update(0, b, cut), b + cut, n - cut), w32);
        assert_int_equal(crc32c_update(crc32c_update(0, b, cut), b + cut, n - cut), w32c);
        assert_true(crc64nvme_update(crc64nvme_update(0, b, cut), b + cut, n - cut) == w64);
    }
    uint32_t c = 0;
    uint64_t c64 = 0;
    for (size_t i = 0; i < n; i++) {
        c = crc32c_update(c, b + i, 1);
        c64 = crc64nvme_update(c64, b + i, 1);
    }
    assert_int_equal(c, w32c);
    assert_true(c64 == w64);
    free(b);
}

static void test_fold_equals_tables(void **state)
{
    (void)state;
    unsigned char *b = pattern(716);
    /* from a register that is not the initial one, as when a write continues */
    const uint32_t s32 = crc32_update(0, "xyz", 3), s32c = crc32c_update(0, "xyz", 3);
    const uint64_t s64 = crc64nvme_update(0, "xyz", 3);
    for (size_t off = 0; off < 16; off++)
        for (size_t n = 0; n <= 700; n += off ? 13 : 1) {
            uint32_t c32 = s32, c32c = s32c;
            uint64_t c64 = s64;
            for (size_t i = 0; i < n; i++) {   /* one byte at a time: tables only */
                c32 = crc32_update(c32, b + off + i, 1);
                c32c = crc32c_update(c32c, b + off + i, 1);
                c64 = crc64nvme_update(c64, b + off + i, 1);
            }
            assert_int_equal(crc32_update(s32, b + off, n), c32);
            assert_int_equal(crc32c_update(s32c, b + off, n), c32c);
            assert_true(crc64nvme_update(s64, b + off, n) == c64);
        }
    free(b);
}

static void test_combine(void **state)
{
    (void)state;
    size_t n = 300;
    unsigned char *b = pattern(n);
    uint32_t w32 = crc32_update(0, b, n), w32c = crc32c_update(0, b, n);
    uint64_t w64 = crc64nvme_update(0, b, n);
    for (size_t cut = 0; cut <= n; cut++) {
        assert_int_equal(crc32_combine(crc32_update(0, b, cut), crc32_update(0, b + cut, n - cut), n - cut), w32);
        assert_int_equal(crc32c_combine(crc32c_update(0, b, cut), crc32c_update(0, b + cut, n - cut), n - cut),
                         w32c);
        assert_true(crc64nvme_combine(crc64nvme_update(0, b, cut), crc64nvme_update(0, b + cut, n - cut),
                                      n - cut) == w64);
    }
    /* through the table API, three parts */
    for (ck_alg_t a = CK_CRC32; a <= CK_CRC64NVME; a++) {
        unsigned char d1[CK_MAX_DIGEST], d2[CK_MAX_DIGEST], d3[CK_MAX_DIGEST], all[CK_MAX_DIGEST],
            r[CK_MAX_DIGEST];
        ck_compute(a, b, 100, d1);
        ck_compute(a, b + 100, 150, d2);
        ck_compute(a, b + 250, 50, d3);
        ck_compute(a, b, n, all);
        assert_int_equal(ck_combine(a, d1, d2, 150, r), 0);
        assert_int_equal(ck_combine(a, r, d3, 50, r), 0);
        assert_memory_equal(r, all, ck_digest_len(a));
    }
    unsigned char x[CK_MAX_DIGEST] = {0};
    assert_int_equal(ck_combine(CK_SHA256, x, x, 1, x), -1);
    free(b);
}

static void test_state_all_at_once(void **state)
{
    (void)state;
    size_t n = 100000;
    unsigned char *b = pattern(n);
    ck_state_t s;
    ck_init(&s);
    for (int a = CK_FIRST; a < CK_COUNT; a++)
        assert_int_equal(ck_add(&s, (ck_alg_t)a), 0);
    for (size_t off = 0; off < n; off += 7777)
        ck_update(&s, b + off, n - off < 7777 ? n - off : 7777);
    assert_int_equal(ck_add(&s, CK_SHA1), 0);          /* already in: fine */
    for (int a = CK_FIRST; a < CK_COUNT; a++) {
        unsigned char one[CK_MAX_DIGEST];
        ck_compute((ck_alg_t)a, b, n, one);
        const unsigned char *d = ck_digest(&s, (ck_alg_t)a);
        assert_non_null(d);
        assert_memory_equal(d, one, ck_digest_len((ck_alg_t)a));
        assert_ptr_equal(ck_digest(&s, (ck_alg_t)a), d);   /* finishing twice is harmless */
    }
    ck_free(&s);

    ck_init(&s);
    assert_int_equal(ck_add(&s, CK_CRC32), 0);
    ck_update(&s, "x", 1);
    assert_int_equal(ck_add(&s, CK_SHA256), -1);         /* too late: bytes already passed */
    assert_null(ck_digest(&s, CK_SHA256));
    char v[CK_B64_MAX];
    assert_int_equal(ck_value(&s, CK_CRC64NVME, v), -1);
    assert_int_equal(ck_value(&s, CK_CRC32, v), 0);
    ck_free(&s);
    free(b);
}

static void test_parse(void **state)
{
    (void)state;
    unsigned char d[CK_MAX_DIGEST];
    assert_int_equal(ck_parse(CK_CRC32, "DUoRhQ==", d), 0);
    assert_int_equal(d[0], 0x0d);
    assert_int_equal(ck_parse(CK_CRC32, "DUoRhQ", d), -1);        /* padding required */
    assert_int_equal(ck_parse(CK_CRC32, "DUoRhQA=", d), -1);      /* 5 bytes */
    assert_int_equal(ck_parse(CK_CRC32, "DUoR", d), -1);          /* 3 bytes */
    assert_int_equal(ck_parse(CK_CRC32, "DUo!hQ==", d), -1);
    assert_int_equal(ck_parse(CK_CRC32, "", d), -1);
    assert_int_equal(ck_parse(CK_CRC32, NULL, d), -1);
    assert_int_equal(ck_parse(CK_CRC64NVME, "DUoRhQ==", d), -1);  /* a CRC32 is not a CRC64 */
    assert_int_equal(ck_parse(CK_SHA256, "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", d), 0);
    assert_int_equal(ck_parse(CK_NONE, "DUoRhQ==", d), -1);
    char big[200];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(ck_parse(CK_SHA256, big, d), -1);
}

static void test_names(void **state)
{
    (void)state;
    for (int a = CK_FIRST; a < CK_COUNT; a++) {
        assert_int_equal(ck_by_name(ck_name((ck_alg_t)a)), a);
        assert_int_equal(ck_by_header(ck_header((ck_alg_t)a)), a);
    }
    assert_int_equal(ck_by_name("crc64nvme"), CK_CRC64NVME);
    assert_int_equal(ck_by_header("X-Amz-Checksum-CRC32C"), CK_CRC32C);
    assert_int_equal(ck_by_name("md5"), CK_NONE);
    assert_int_equal(ck_by_name(NULL), CK_NONE);
    assert_int_equal(ck_by_header("x-amz-checksum-sha512"), CK_NONE);
    assert_string_equal(ck_name(CK_NONE), "");
    assert_string_equal(ck_xml(CK_SHA1), "ChecksumSHA1");
    assert_true(ck_is_crc(CK_CRC64NVME) && !ck_is_crc(CK_SHA1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values), cmocka_unit_test(test_sdk_values),
        cmocka_unit_test(test_chaining_any_split), cmocka_unit_test(test_fold_equals_tables),
        cmocka_unit_test(test_combine),
        cmocka_unit_test(test_state_all_at_once), cmocka_unit_test(test_parse),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
