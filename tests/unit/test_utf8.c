/* test_utf8.c - unit tests for common/utf8.c: utf8_seq_len() on ASCII and on 2-, 3- and
 * 4-byte sequences at every boundary of the Unicode table of well-formed byte sequences
 * (with the decoded code point), its refusals (overlong forms such as C0 80 and E0 80 80,
 * UTF-16 surrogates ED A0 80.., values past U+10FFFF such as F4 90 80 80, sequences cut
 * short by avail even when the next byte in memory would complete them, lone continuation
 * bytes, F5..FF), an exhaustive comparison of every 1..3-byte sequence and every 4-byte
 * lead/second byte pair against an independent range-table reference; and utf8_sanitize(),
 * which must keep valid text byte-identical and replace each byte of broken UTF-8 with
 * '?', keeping the length, with NULL giving "" and the output always valid (and
 * sanitising twice changing nothing more). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

/* ---- an independent reference: Unicode 15 Table 3-7 (well-formed byte sequences) -- */

static int in(unsigned b, unsigned lo, unsigned hi)
{
    return b >= lo && b <= hi;
}

/* Length of the well-formed sequence at s (0 if none), by the table's byte ranges. */
static size_t ref_len(const unsigned char *s, size_t avail)
{
    if (avail < 1)
        return 0;
    unsigned b0 = s[0];
    if (b0 <= 0x7f)
        return 1;
    if (in(b0, 0xc2, 0xdf))
        return avail >= 2 && in(s[1], 0x80, 0xbf) ? 2 : 0;
    if (b0 == 0xe0)
        return avail >= 3 && in(s[1], 0xa0, 0xbf) && in(s[2], 0x80, 0xbf) ? 3 : 0;
    if (in(b0, 0xe1, 0xec) || in(b0, 0xee, 0xef))
        return avail >= 3 && in(s[1], 0x80, 0xbf) && in(s[2], 0x80, 0xbf) ? 3 : 0;
    if (b0 == 0xed)
        return avail >= 3 && in(s[1], 0x80, 0x9f) && in(s[2], 0x80, 0xbf) ? 3 : 0;
    if (b0 == 0xf0)
        return avail >= 4 && in(s[1], 0x90, 0xbf) && in(s[2], 0x80, 0xbf) && in(s[3], 0x80, 0xbf) ? 4 : 0;
    if (in(b0, 0xf1, 0xf3))
        return avail >= 4 && in(s[1], 0x80, 0xbf) && in(s[2], 0x80, 0xbf) && in(s[3], 0x80, 0xbf) ? 4 : 0;
    if (b0 == 0xf4)
        return avail >= 4 && in(s[1], 0x80, 0x8f) && in(s[2], 0x80, 0xbf) && in(s[3], 0x80, 0xbf) ? 4 : 0;
    return 0;
}

static unsigned ref_cp(const unsigned char *s, size_t n)
{
    switch (n) {
    case 1: return s[0];
    case 2: return (s[0] & 0x1fu) << 6 | (s[1] & 0x3fu);
    case 3: return (s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu);
    default: return (s[0] & 0x07u) << 18 | (s[1] & 0x3fu) << 12 | (s[2] & 0x3fu) << 6 | (s[3] & 0x3fu);
    }
}

/* ---- utf8_seq_len ---------------------------------------------------------------- */

/* bytes (with avail = their count) must decode as one sequence of that length to cp. */
static void expect_ok(const char *bytes, size_t n, unsigned cp)
{
    unsigned got = 0xdeadbeef;
    size_t len = utf8_seq_len((const unsigned char *)bytes, n, &got);
    if (len != n)
        fail_msg("sequence for U+%04X: length %zu, want %zu", cp, len, n);
    if (got != cp)
        fail_msg("sequence of length %zu: U+%04X, want U+%04X", n, got, cp);
}

static void expect_bad(const char *bytes, size_t avail)
{
    unsigned got = 0;
    size_t len = utf8_seq_len((const unsigned char *)bytes, avail, &got);
    if (len != 0) {
        char hex[64] = "";
        for (size_t i = 0; i < avail && i < 8; i++)
            snprintf(hex + strlen(hex), sizeof hex - strlen(hex), "%02X ", (unsigned char)bytes[i]);
        fail_msg("%s(avail %zu) accepted as length %zu (U+%04X)", hex, avail, len, got);
    }
}

static void test_seq_ascii(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 0x80; c++) {
        unsigned char b[2] = {(unsigned char)c, 0x80};
        unsigned cp = 0xdeadbeef;
        assert_int_equal(utf8_seq_len(b, 2, &cp), 1);   /* a following byte is not consumed */
        assert_int_equal(cp, c);
        cp = 0xdeadbeef;
        assert_int_equal(utf8_seq_len(b, 1, &cp), 1);
        assert_int_equal(cp, c);
    }
}

static void test_seq_multibyte(void **state)
{
    (void)state;
    expect_ok("\xc2\x80", 2, 0x80);
    expect_ok("\xc3\xa9", 2, 0xe9);                 /* é */
    expect_ok("\xd0\x96", 2, 0x416);                /* Ж */
    expect_ok("\xdf\xbf", 2, 0x7ff);
    expect_ok("\xe0\xa0\x80", 3, 0x800);
    expect_ok("\xe2\x82\xac", 3, 0x20ac);           /* € */
    expect_ok("\xe6\x97\xa5", 3, 0x65e5);           /* 日 */
    expect_ok("\xed\x9f\xbf", 3, 0xd7ff);           /* just below the surrogates */
    expect_ok("\xee\x80\x80", 3, 0xe000);           /* just above them */
    expect_ok("\xef\xbb\xbf", 3, 0xfeff);           /* BOM */
    expect_ok("\xef\xbf\xbd", 3, 0xfffd);
    expect_ok("\xef\xbf\xbf", 3, 0xffff);
    expect_ok("\xf0\x90\x80\x80", 4, 0x10000);
    expect_ok("\xf0\x9f\x98\x80", 4, 0x1f600);      /* 😀 */
    expect_ok("\xf3\xbf\xbf\xbf", 4, 0xfffff);
    expect_ok("\xf4\x80\x80\x80", 4, 0x100000);
    expect_ok("\xf4\x8f\xbf\xbf", 4, 0x10ffff);

    /* avail larger than the sequence: only the sequence is consumed */
    unsigned cp;
    assert_int_equal(utf8_seq_len((const unsigned char *)"\xe2\x82\xac" "abc", 6, &cp), 3);
    assert_int_equal(cp, 0x20ac);
    assert_int_equal(utf8_seq_len((const unsigned char *)"\xc3\xa9\xc3\xa9", 4, &cp), 2);
    assert_int_equal(cp, 0xe9);
}

static void test_seq_overlong(void **state)
{
    (void)state;
    expect_bad("\xc0\x80", 2);            /* U+0000 in two bytes */
    expect_bad("\xc0\xaf", 2);            /* '/' */
    expect_bad("\xc1\xbf", 2);            /* U+007F */
    expect_bad("\xe0\x80\x80", 3);
    expect_bad("\xe0\x80\xaf", 3);
    expect_bad("\xe0\x9f\xbf", 3);        /* U+07FF in three bytes */
    expect_bad("\xf0\x80\x80\x80", 4);
    expect_bad("\xf0\x80\x80\xaf", 4);
    expect_bad("\xf0\x8f\xbf\xbf", 4);    /* U+FFFF in four bytes */
}

static void test_seq_surrogates_and_range(void **state)
{
    (void)state;
    expect_bad("\xed\xa0\x80", 3);        /* U+D800 */
    expect_bad("\xed\xad\xbf", 3);        /* U+DB7F */
    expect_bad("\xed\xb0\x80", 3);        /* U+DC00 */
    expect_bad("\xed\xbf\xbf", 3);        /* U+DFFF */
    expect_bad("\xed\xa0\xbd\xed\xb8\x80", 6);   /* CESU-8 pair for U+1F600 */
    expect_bad("\xf4\x90\x80\x80", 4);    /* U+110000 */
    expect_bad("\xf4\xbf\xbf\xbf", 4);
    expect_bad("\xf5\x80\x80\x80", 4);
    expect_bad("\xf7\xbf\xbf\xbf", 4);    /* U+1FFFFF */
    expect_bad("\xf8\x88\x80\x80\x80", 5);
    expect_bad("\xfc\x84\x80\x80\x80\x80", 6);
    expect_bad("\xfe\x80\x80\x80", 4);
    expect_bad("\xff\x80\x80\x80", 4);
    expect_bad("\xfe", 1);
    expect_bad("\xff", 1);
}

static void test_seq_truncated(void **state)
{
    (void)state;
    /* the completing byte is right there in memory, but avail says it is not ours */
    expect_bad("\xc3\xa9", 1);
    expect_bad("\xe2\x82\xac", 1);
    expect_bad("\xe2\x82\xac", 2);
    expect_bad("\xf0\x9f\x98\x80", 1);
    expect_bad("\xf0\x9f\x98\x80", 2);
    expect_bad("\xf0\x9f\x98\x80", 3);
    /* cut short by a terminator or a non-continuation byte */
    expect_bad("\xc3", 2);                /* C3 00 */
    expect_bad("\xe2\x82", 3);            /* E2 82 00 */
    expect_bad("\xc3\x28", 2);
    expect_bad("\xe2\x28\xa1", 3);
    expect_bad("\xe2\x82\x28", 3);
    expect_bad("\xf0\x9f\x98\x28", 4);
    expect_bad("\xf0\x28\x8c\xbc", 4);
    expect_bad("\xe2\xc3\xa9", 3);        /* a new lead byte where a continuation belongs */
}

static void test_seq_lone_continuation(void **state)
{
    (void)state;
    for (unsigned c = 0x80; c <= 0xbf; c++) {
        unsigned char b[4] = {(unsigned char)c, 0x80, 0x80, 0x80};
        expect_bad((const char *)b, 4);
        expect_bad((const char *)b, 1);
    }
}

/* Every 1-, 2- and 3-byte string, and every 4-byte lead/second pair with a spread of
 * trailing bytes, agrees with the reference table; for each avail prefix too. */
static void test_seq_exhaustive(void **state)
{
    (void)state;
    static const unsigned char tails[] = {0x00, 0x41, 0x7f, 0x80, 0x81, 0x9f, 0xa0, 0xbe, 0xbf, 0xc0, 0xc2, 0xe0, 0xf4, 0xff};
    unsigned char b[4];
    unsigned long checked = 0;
    for (unsigned b0 = 0; b0 < 256; b0++) {
        for (unsigned b1 = 0; b1 < 256; b1++) {
            for (unsigned b2 = 0; b2 < 256; b2++) {
                b[0] = (unsigned char)b0, b[1] = (unsigned char)b1, b[2] = (unsigned char)b2, b[3] = 0x80;
                size_t lim = b0 >= 0xf0 ? 4 : 3;
                for (size_t avail = 1; avail <= lim; avail++) {
                    /* the 1- and 2-byte prefixes do not depend on b2: check them once */
                    if (avail < 3 && b2 != 0)
                        continue;
                    unsigned cp = 0xdeadbeef;
                    size_t got = utf8_seq_len(b, avail, &cp), want = ref_len(b, avail);
                    if (got != want)
                        fail_msg("%02X %02X %02X %02X avail %zu: length %zu, want %zu", b0, b1, b2, b[3], avail,
                                 got, want);
                    if (want && cp != ref_cp(b, want))
                        fail_msg("%02X %02X %02X %02X: U+%04X, want U+%04X", b0, b1, b2, b[3], cp,
                                 ref_cp(b, want));
                    checked++;
                }
            }
            if (b0 < 0xf0)
                continue;
            for (size_t i = 0; i < sizeof tails; i++) {
                for (size_t j = 0; j < sizeof tails; j++) {
                    b[0] = (unsigned char)b0, b[1] = (unsigned char)b1, b[2] = tails[i], b[3] = tails[j];
                    unsigned cp = 0xdeadbeef;
                    size_t got = utf8_seq_len(b, 4, &cp), want = ref_len(b, 4);
                    if (got != want)
                        fail_msg("%02X %02X %02X %02X: length %zu, want %zu", b[0], b[1], b[2], b[3], got, want);
                    if (want && cp != ref_cp(b, 4))
                        fail_msg("%02X %02X %02X %02X: U+%04X, want U+%04X", b[0], b[1], b[2], b[3], cp,
                                 ref_cp(b, 4));
                    checked++;
                }
            }
        }
    }
    assert_true(checked > 16000000UL);

    /* and every scalar value round-trips through its encoding */
    for (unsigned cp = 0; cp <= 0x10ffff; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        unsigned char e[4];
        size_t n;
        if (cp < 0x80)
            e[0] = (unsigned char)cp, n = 1;
        else if (cp < 0x800)
            e[0] = (unsigned char)(0xc0 | cp >> 6), e[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
        else if (cp < 0x10000)
            e[0] = (unsigned char)(0xe0 | cp >> 12), e[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)),
            e[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
        else
            e[0] = (unsigned char)(0xf0 | cp >> 18), e[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f)),
            e[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)), e[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
        unsigned got = 0xdeadbeef;
        size_t len = utf8_seq_len(e, n, &got);
        if (len != n || got != cp)
            fail_msg("U+%04X: length %zu cp U+%04X", cp, len, got);
        if (n > 1 && utf8_seq_len(e, n - 1, &got) != 0)
            fail_msg("U+%04X accepted with one byte missing", cp);
    }
}

/* ---- utf8_sanitize --------------------------------------------------------------- */

static void expect_sanitize(const char *in_s, const char *want)
{
    char *got = utf8_sanitize(in_s);
    assert_non_null(got);
    if (strcmp(got, want)) {
        char g[256];
        snprintf(g, sizeof g, "%s", got);
        free(got);
        fail_msg("utf8_sanitize: got '%s', want '%s'", g, want);
    }
    free(got);
}

static void test_sanitize_examples(void **state)
{
    (void)state;
    expect_sanitize("h\xc3\xa9llo\xff", "h\xc3\xa9llo?");
    expect_sanitize("", "");
    expect_sanitize("plain ascii, nothing to do ~!@#", "plain ascii, nothing to do ~!@#");
    expect_sanitize("\xff", "?");
    expect_sanitize("\xfe\xff", "??");
    expect_sanitize("\x80", "?");
    expect_sanitize("a\x80\x80z", "a??z");
    expect_sanitize("\xc0\x80", "??");                       /* overlong NUL */
    expect_sanitize("\xe0\x80\x80", "???");
    expect_sanitize("\xed\xa0\x80", "???");                  /* surrogate */
    expect_sanitize("\xf4\x90\x80\x80", "????");             /* past U+10FFFF */
    expect_sanitize("abc\xe2\x82", "abc??");                 /* cut at the end */
    expect_sanitize("\xf0\x9f\x98", "???");
    expect_sanitize("a\xe2\x82" "b", "a??b");
    expect_sanitize("\xe2\x82\xac\xe2\x82", "\xe2\x82\xac??");
    /* a broken lead swallows nothing: the valid sequence after it survives */
    expect_sanitize("\xe2\x82\xe2\x82\xac", "??\xe2\x82\xac");
    expect_sanitize("\xc3\xc3\xa9", "?\xc3\xa9");
    expect_sanitize("\xf0\x9f\x98\x80\xf0\x9f\x98", "\xf0\x9f\x98\x80???");
}

static void test_sanitize_null(void **state)
{
    (void)state;
    char *s = utf8_sanitize(NULL);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

static void test_sanitize_valid_unchanged(void **state)
{
    (void)state;
    static const char *valid[] = {
        "h\xc3\xa9llo w\xc3\xb6rld",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",                 /* 日本語 */
        "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",     /* Привет */
        "\xf0\x9f\x98\x80 \xf0\x9f\x8c\x8d \xf4\x8f\xbf\xbf",
        ("\xef\xbb\xbf" "bom first"),
        "\x01\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80",
    };
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        char *s = utf8_sanitize(valid[i]);
        assert_non_null(s);
        assert_ptr_not_equal(s, valid[i]);
        assert_int_equal(strlen(s), strlen(valid[i]));
        assert_memory_equal(s, valid[i], strlen(valid[i]) + 1);
        free(s);
    }
}

/* Random byte strings: same length, every well-formed sequence kept, every other byte
 * '?', the output valid UTF-8, and sanitising again a no-op. */
static void test_sanitize_random(void **state)
{
    (void)state;
    uint32_t x = 0x9e3779b9u;
    for (int round = 0; round < 20000; round++) {
        unsigned char buf[64];
        size_t n = (size_t)(round % 63) + 1;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            /* bias towards bytes that form or nearly form multi-byte sequences */
            unsigned r = x & 0xff;
            buf[i] = (unsigned char)(r < 0x40 ? 0x80 | (r & 0x3f) : r < 0x60 ? 0xc2 + (r & 0x1f) % 30
                                     : r < 0x70 ? 0xe0 | (r & 0x0f) : r < 0x78 ? 0xf0 | (r & 0x07) : r);
            if (buf[i] == 0)
                buf[i] = 'A';
        }
        buf[n] = '\0';
        char *s = utf8_sanitize((const char *)buf);
        assert_non_null(s);
        assert_int_equal(strlen(s), n);
        /* walk the input with the reference to predict the output */
        size_t i = 0;
        while (i < n) {
            size_t k = ref_len(buf + i, n - i);
            if (k) {
                assert_memory_equal(s + i, buf + i, k);
                i += k;
            } else {
                assert_int_equal(s[i], '?');
                i++;
            }
        }
        for (size_t j = 0; j < n;) {
            unsigned cp;
            size_t k = utf8_seq_len((const unsigned char *)s + j, n - j, &cp);
            assert_true(k > 0);
            j += k;
        }
        char *again = utf8_sanitize(s);
        assert_string_equal(again, s);
        free(again);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_ascii),
        cmocka_unit_test(test_seq_multibyte),
        cmocka_unit_test(test_seq_overlong),
        cmocka_unit_test(test_seq_surrogates_and_range),
        cmocka_unit_test(test_seq_truncated),
        cmocka_unit_test(test_seq_lone_continuation),
        cmocka_unit_test(test_seq_exhaustive),
        cmocka_unit_test(test_sanitize_examples),
        cmocka_unit_test(test_sanitize_null),
        cmocka_unit_test(test_sanitize_valid_unchanged),
        cmocka_unit_test(test_sanitize_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
