/* test_ids.c - unit tests for common/ids.c: the shape of resource ids, hex strings
 * and UUIDs, that 10,000 ids do not repeat, that the digits look random, and that
 * ids_valid() accepts exactly the documented forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ids.h"

static int all_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
            return 0;
    return 1;
}

static void test_new_format(void **state)
{
    (void)state;
    static const char *prefixes[] = {"i", "ami", "vpc", "subnet", "eipalloc", "tgw-attach"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        char id[IDS_MAX];
        memset(id, 'Z', sizeof id);
        char *r = ids_new(prefixes[i], id);
        assert_ptr_equal(r, id);
        size_t plen = strlen(prefixes[i]);
        assert_int_equal(strlen(id), plen + 1 + IDS_HEX_DIGITS);
        assert_memory_equal(id, prefixes[i], plen);
        assert_int_equal(id[plen], '-');
        assert_true(all_lower_hex(id + plen + 1, IDS_HEX_DIGITS));
        assert_true(ids_valid(prefixes[i], id));
    }
}

/* A prefix too long for IDS_MAX is cut, never overflowing the buffer. */
static void test_new_long_prefix(void **state)
{
    (void)state;
    char prefix[200];
    char buf[IDS_MAX + 8];
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    memset(buf, 'Z', sizeof buf);
    ids_new(prefix, buf);
    assert_int_equal(strlen(buf), IDS_MAX - 1);
    for (size_t i = IDS_MAX; i < sizeof buf; i++)
        assert_int_equal(buf[i], 'Z'); /* nothing written past IDS_MAX */
    assert_true(all_lower_hex(buf + IDS_MAX - 1 - IDS_HEX_DIGITS, IDS_HEX_DIGITS));
    assert_int_equal(buf[IDS_MAX - 2 - IDS_HEX_DIGITS], '-');

    char id[IDS_MAX];
    ids_new(NULL, id);
    assert_int_equal(strlen(id), 1 + IDS_HEX_DIGITS);
    assert_int_equal(id[0], '-');
    assert_null(ids_new("i", NULL));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_unique(void **state)
{
    (void)state;
    enum { N = 10000 };
    char (*ids)[IDS_MAX] = calloc(N, IDS_MAX);
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        ids_new("i", ids[i]);
    qsort(ids, N, IDS_MAX, cmp_str);
    for (int i = 1; i < N; i++)
        if (!strcmp(ids[i - 1], ids[i]))
            fail_msg("duplicate id %s", ids[i]);
    free(ids);
}

/* Every digit position uses all 16 values and no value dominates: a stuck nibble or a
 * modulo bias towards a few digits would show here. */
static void test_digits_spread(void **state)
{
    (void)state;
    enum { N = 4000 };
    int count[IDS_HEX_DIGITS][16] = {{0}};
    for (int i = 0; i < N; i++) {
        char id[IDS_MAX];
        ids_new("x", id);
        for (int d = 0; d < IDS_HEX_DIGITS; d++) {
            char c = id[2 + d];
            count[d][c <= '9' ? c - '0' : c - 'a' + 10]++;
        }
    }
    for (int d = 0; d < IDS_HEX_DIGITS; d++)
        for (int v = 0; v < 16; v++) {
            /* expected 250 each; these bounds are > 8 standard deviations away */
            if (count[d][v] < 120 || count[d][v] > 380)
                fail_msg("digit %d value %x seen %d times of %d", d, v, count[d][v], N);
        }
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(ids_valid("i", "i-0123456789abcdef0"));
    assert_true(ids_valid("i", "i-01234567"));        /* old 8-digit form */
    assert_true(ids_valid("vpc", "vpc-0a1b2c3d4e5f60718"));
    assert_true(ids_valid("tgw-attach", "tgw-attach-0123456789abcdef0"));

    assert_false(ids_valid("i", "i-0123456789ABCDEF0"));     /* uppercase */
    assert_false(ids_valid("i", "i-0123456789abcdef"));      /* 16 digits */
    assert_false(ids_valid("i", "i-0123456789abcdef01"));    /* 18 digits */
    assert_false(ids_valid("i", "i-0123456"));               /* 7 digits */
    assert_false(ids_valid("i", "i-012345678"));             /* 9 digits */
    assert_false(ids_valid("i", "i-0123456789abcdeg0"));     /* not hex */
    assert_false(ids_valid("i", "i_0123456789abcdef0"));
    assert_false(ids_valid("i", "ami-0123456789abcdef0"));
    assert_false(ids_valid("ami", "i-0123456789abcdef0"));
    assert_false(ids_valid("i", "ii-0123456789abcdef0"));
    assert_false(ids_valid("i", "-0123456789abcdef0"));
    assert_false(ids_valid("i", " i-0123456789abcdef0"));
    assert_false(ids_valid("i", "i-0123456789abcdef0 "));
    assert_false(ids_valid("i", "i-0123456789abcdef0\n"));
    assert_false(ids_valid("i", "i-"));
    assert_false(ids_valid("i", ""));
    assert_false(ids_valid("i", NULL));
    assert_false(ids_valid(NULL, "i-0123456789abcdef0"));
}

static void test_hex(void **state)
{
    (void)state;
    char buf[80];
    for (size_t n = 0; n < 70; n++) {
        memset(buf, 'Z', sizeof buf);
        ids_hex(buf, n);
        assert_int_equal(strlen(buf), n);
        assert_true(all_lower_hex(buf, n));
        assert_int_equal(buf[n + 1], 'Z'); /* exactly n + 1 bytes written */
    }
    char a[33], b[33];
    ids_hex(a, 32);
    ids_hex(b, 32);
    assert_string_not_equal(a, b);
    ids_hex(NULL, 10); /* must not crash */
}

static void test_uuid(void **state)
{
    (void)state;
    char prev[37] = "";
    for (int i = 0; i < 1000; i++) {
        char u[37];
        memset(u, 'Z', sizeof u);
        ids_uuid(u);
        assert_int_equal(strlen(u), 36);
        for (int j = 0; j < 36; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                assert_int_equal(u[j], '-');
            else
                assert_true(all_lower_hex(u + j, 1));
        }
        assert_int_equal(u[14], '4');                  /* version 4 */
        assert_non_null(strchr("89ab", u[19]));        /* RFC 4122 variant */
        assert_string_not_equal(u, prev);
        memcpy(prev, u, sizeof prev);
    }
    ids_uuid(NULL);
}

/* Canonical user ids: the documented formula (sha256sum of the prefixed account id, as
 * identity's generated column computes it), stable and distinct per account. */
static void test_canonical_user(void **state)
{
    (void)state;
    char a[65], b[65];
    ids_canonical_user("123456789012", a);
    assert_string_equal(a, "52d7ced09d9ac1000fd84db7fb73b6046ac669abc5b2afbf7462109472eaf246");
    ids_canonical_user("123456789013", b);
    assert_int_equal(strlen(b), 64);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_format),
        cmocka_unit_test(test_new_long_prefix),
        cmocka_unit_test(test_unique),
        cmocka_unit_test(test_digits_spread),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_canonical_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
