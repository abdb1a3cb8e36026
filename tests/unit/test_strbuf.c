/* test_strbuf.c - unit tests for common/strbuf.c: strbuf_put(), strbuf_puts() and
 * strbuf_putc() growing one buffer over many appends (100,000 single characters, chunks
 * of every size up to 300, one megabyte at once) while keeping len exact, cap above len,
 * the string NUL-terminated after every append and the content identical to a reference
 * copy, with geometric rather than per-append growth; partial puts and embedded NULs;
 * a zero-length put on an empty buffer giving "" (a non-NULL s); and hex_digit_value()
 * for every byte value (0-9, a-f, A-F with their values, everything else -1) and for ints
 * outside the byte range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bigbuf.h"
#include "strbuf.h"

static void check_invariants(const strbuf_t *b)
{
    assert_non_null(b->s);
    assert_true(b->cap > b->len);
    assert_int_equal(b->s[b->len], '\0');
}

static void test_zero_length_put_on_empty(void **state)
{
    (void)state;
    strbuf_t b = {0};
    strbuf_put(&b, "ignored", 0);
    check_invariants(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.s, "");
    free(b.s);

    /* a NULL source is fine when nothing is copied */
    strbuf_t c = {0};
    strbuf_put(&c, NULL, 0);
    check_invariants(&c);
    assert_string_equal(c.s, "");
    free(c.s);

    strbuf_t d = {0};
    strbuf_puts(&d, "");
    check_invariants(&d);
    assert_int_equal(d.len, 0);
    assert_string_equal(d.s, "");
    /* and a zero-length put on a non-empty buffer changes nothing */
    strbuf_puts(&d, "abc");
    strbuf_put(&d, "xyz", 0);
    assert_int_equal(d.len, 3);
    assert_string_equal(d.s, "abc");
    free(d.s);
}

static void test_small_appends(void **state)
{
    (void)state;
    strbuf_t b = {0};
    strbuf_puts(&b, "hello");
    check_invariants(&b);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.s, "hello");
    strbuf_putc(&b, ',');
    strbuf_putc(&b, ' ');
    strbuf_put(&b, "world!!!", 5);          /* only n bytes are taken */
    check_invariants(&b);
    assert_int_equal(b.len, 12);
    assert_string_equal(b.s, "hello, world");
    strbuf_put(&b, "a\0b", 3);              /* embedded NUL kept, length counts it */
    check_invariants(&b);
    assert_int_equal(b.len, 15);
    assert_memory_equal(b.s, "hello, worlda\0b", 16);
    strbuf_putc(&b, '\0');
    assert_int_equal(b.len, 16);
    assert_int_equal(b.s[15], '\0');
    assert_int_equal(b.s[16], '\0');
    strbuf_putc(&b, (char)0xff);            /* any byte value */
    assert_int_equal(b.len, 17);
    assert_int_equal((unsigned char)b.s[16], 0xff);
    check_invariants(&b);
    free(b.s);
}

static void test_putc_100k(void **state)
{
    (void)state;
    enum { N = 100000 };
    char *want = malloc(N + 1);
    assert_non_null(want);
    strbuf_t b = {0};
    size_t caps = 0, last_cap = 0;
    for (size_t i = 0; i < N; i++) {
        char c = (char)('a' + i % 26);
        want[i] = c;
        strbuf_putc(&b, c);
        assert_int_equal(b.len, i + 1);
        check_invariants(&b);
        if (b.cap != last_cap) {
            assert_true(b.cap > last_cap);
            caps++;
            last_cap = b.cap;
        }
        /* earlier content survives every reallocation */
        if (i % 997 == 0)
            assert_memory_equal(b.s, want, i + 1);
    }
    want[N] = '\0';
    assert_int_equal(b.len, N);
    assert_int_equal(strlen(b.s), N);
    assert_string_equal(b.s, want);
    /* growth is geometric: 100,000 appends need a handful of reallocations, not thousands */
    assert_true(caps <= 20);
    assert_true(b.cap < 4 * (size_t)N);
    free(b.s);
    free(want);
}

static void test_puts_and_put_mixed(void **state)
{
    (void)state;
    enum { TOTAL = 200000 };
    char *want = malloc(TOTAL + 600);
    char chunk[301];
    assert_non_null(want);
    strbuf_t b = {0};
    size_t len = 0, k = 0;
    uint32_t x = 12345;
    while (len < TOTAL) {
        size_t n = k++ % 301;                      /* 0..300, every size */
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            chunk[i] = (char)('!' + (x >> 16) % 90);  /* printable, never NUL */
        }
        chunk[n] = '\0';
        switch (k % 3) {
        case 0: strbuf_put(&b, chunk, n); break;
        case 1: strbuf_puts(&b, chunk); break;
        default:
            for (size_t i = 0; i < n; i++)
                strbuf_putc(&b, chunk[i]);
            if (n == 0)
                strbuf_put(&b, chunk, 0);
            break;
        }
        memcpy(want + len, chunk, n);
        len += n;
        assert_int_equal(b.len, len);
        check_invariants(&b);
    }
    assert_memory_equal(b.s, want, len);
    assert_int_equal(strlen(b.s), len);
    free(b.s);
    free(want);
}

static void test_one_big_put(void **state)
{
    (void)state;
    enum { BIG = 1 << 20 };
    char *src = malloc(BIG);
    assert_non_null(src);
    for (size_t i = 0; i < BIG; i++)
        src[i] = (char)(i * 7 + 3);
    strbuf_t b = {0};
    strbuf_putc(&b, '<');
    strbuf_put(&b, src, BIG);
    strbuf_putc(&b, '>');
    check_invariants(&b);
    assert_int_equal(b.len, BIG + 2);
    assert_int_equal(b.s[0], '<');
    assert_memory_equal(b.s + 1, src, BIG);
    assert_int_equal(b.s[BIG + 1], '>');
    free(b.s);
    free(src);

    /* exactly filling the first allocation, then one more byte */
    strbuf_t c = {0};
    char fill[1024];
    memset(fill, 'f', sizeof fill);
    for (size_t n = 1; n < sizeof fill; n++) {
        strbuf_put(&c, fill, n);
        check_invariants(&c);
        assert_int_equal(c.len, n);
        size_t cap = c.cap;
        strbuf_put(&c, fill, cap - 1 - n);           /* len becomes cap - 1: no growth */
        assert_int_equal(c.cap, cap);
        assert_int_equal(c.len, cap - 1);
        check_invariants(&c);
        strbuf_putc(&c, 'g');                        /* now it must grow */
        assert_true(c.cap > cap);
        assert_int_equal(c.len, cap);
        check_invariants(&c);
        for (size_t i = 0; i + 1 < cap; i++)
            if (c.s[i] != 'f')
                fail_msg("byte %zu is %02x", i, (unsigned char)c.s[i]);
        assert_int_equal(c.s[cap - 1], 'g');
        free(c.s);
        memset(&c, 0, sizeof c);
    }
}

static void test_printf(void **state)
{
    (void)state;
    strbuf_t b = {0};
    strbuf_printf(&b, "%s", "");                /* nothing to add: still valid */
    strbuf_printf(&b, "vni=%u ", 1001u);
    for (int i = 0; i < 1000; i++) strbuf_printf(&b, "%03d", i % 1000);
    check_invariants(&b);
    assert_int_equal(b.len, strlen("vni=1001 ") + 3000);
    assert_memory_equal(b.s, "vni=1001 000001002", 18);
    assert_string_equal(b.s + b.len - 3, "999");
    free(b.s);
}

static void test_hex_digit_value(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        int want = -1;
        if (c >= '0' && c <= '9')
            want = c - '0';
        else if (c >= 'a' && c <= 'f')
            want = 10 + c - 'a';
        else if (c >= 'A' && c <= 'F')
            want = 10 + c - 'A';
        int got = hex_digit_value(c);
        if (got != want)
            fail_msg("hex_digit_value(0x%02x) = %d, want %d", c, got, want);
    }
    /* spot checks independent of the loop's formula */
    assert_int_equal(hex_digit_value('0'), 0);
    assert_int_equal(hex_digit_value('9'), 9);
    assert_int_equal(hex_digit_value('a'), 10);
    assert_int_equal(hex_digit_value('A'), 10);
    assert_int_equal(hex_digit_value('f'), 15);
    assert_int_equal(hex_digit_value('F'), 15);
    assert_int_equal(hex_digit_value('g'), -1);
    assert_int_equal(hex_digit_value('G'), -1);
    assert_int_equal(hex_digit_value('/'), -1);
    assert_int_equal(hex_digit_value(':'), -1);
    assert_int_equal(hex_digit_value('@'), -1);
    assert_int_equal(hex_digit_value('`'), -1);
    assert_int_equal(hex_digit_value('x'), -1);
    assert_int_equal(hex_digit_value(' '), -1);
    assert_int_equal(hex_digit_value('\0'), -1);
    /* counting valid values: exactly 22 digits */
    int valid = 0;
    for (int c = 0; c < 256; c++)
        valid += hex_digit_value(c) >= 0;
    assert_int_equal(valid, 22);
    /* ints outside the byte range, and sign-extended chars */
    assert_int_equal(hex_digit_value(-1), -1);
    assert_int_equal(hex_digit_value(256 + '0'), -1);
    assert_int_equal(hex_digit_value(256 + 'a'), -1);
    assert_int_equal(hex_digit_value(-256 + 'a'), -1);
    assert_int_equal(hex_digit_value((signed char)0xe1), -1);
    assert_int_equal(hex_digit_value(0x7fffffff), -1);
    assert_int_equal(hex_digit_value(-0x7fffffff - 1), -1);
}

/* A bigbuf.h buffer: the text it starts from carried over, puts and printf past its room
 * (its huge-page advice splits the mapping, which a remap could not move: the page of a
 * first build failed so), the text intact, freed by its own function. */
static void test_bigbuf(void **state)
{
    (void)state;
    strbuf_t b = {0};
    strbuf_puts(&b, "head:");
    bigbuf_start(&b, 3u << 20, 3u << 20);
    assert_string_equal(b.s, "head:");
    assert_true(b.cap >= 3u << 20);
    assert_ptr_equal(bigbuf_free_of(&b), bigbuf_free);
    size_t n = 0;
    for (int i = 0; n < (9u << 20); i++) {
        char line[64];
        int k = snprintf(line, sizeof line, "%07d,", i);
        if (i % 2)
            strbuf_put(&b, line, (size_t)k);
        else
            strbuf_printf(&b, "%07d,", i);
        n += (size_t)k;
    }
    assert_int_equal(b.len, 5 + n);
    assert_int_equal(strlen(b.s), b.len);
    assert_memory_equal(b.s, "head:0000000,0000001,", 21);
    char last[16];
    snprintf(last, sizeof last, "%07d,", (int)(n / 8) - 1);
    assert_memory_equal(b.s + b.len - 8, last, 8);
    bigbuf_free_of(&b)(b.s);
    strbuf_t m = {0};
    strbuf_puts(&m, "x");
    assert_ptr_equal(bigbuf_free_of(&m), free);
    free(m.s);
    bigbuf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_length_put_on_empty),
        cmocka_unit_test(test_small_appends),
        cmocka_unit_test(test_putc_100k),
        cmocka_unit_test(test_puts_and_put_mixed),
        cmocka_unit_test(test_one_big_put),
        cmocka_unit_test(test_hex_digit_value),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_bigbuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
