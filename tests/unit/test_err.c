/* test_err.c - unit tests for common/err.c: verr_set returns -1 and fills every field,
 * long codes and messages are cut to their buffers (never overflowing), NULL is
 * accepted where the header says so, and the x-allocators and AUTOFREE behave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"

static int fails_with(verr_t *e)
{
    return verr_set(e, 409, "IncorrectState", "instance %s is %s", "i-1", "stopping");
}

static void test_set_fills_fields(void **state)
{
    (void)state;
    verr_t e;
    memset(&e, 0x7f, sizeof e);
    assert_int_equal(fails_with(&e), -1);
    assert_string_equal(e.code, "IncorrectState");
    assert_string_equal(e.message, "instance i-1 is stopping");
    assert_int_equal(e.http_status, 409);

    /* a second error replaces the first entirely */
    assert_int_equal(verr_set(&e, 400, "X", "y"), -1);
    assert_string_equal(e.code, "X");
    assert_string_equal(e.message, "y");
    assert_int_equal(e.http_status, 400);
}

static void test_null_safe(void **state)
{
    (void)state;
    assert_int_equal(verr_set(NULL, 500, "InternalError", "%s", "x"), -1);
    assert_int_equal(fails_with(NULL), -1);
    verr_clear(NULL);
    autofree_ptr(&(void *){NULL});
}

static void test_clear(void **state)
{
    (void)state;
    verr_t e;
    fails_with(&e);
    verr_clear(&e);
    assert_string_equal(e.code, "");
    assert_string_equal(e.message, "");
    assert_int_equal(e.http_status, 0);
}

/* Messages often quote tenant input: a long one must be cut, terminated, and must not
 * touch the bytes after the buffer. */
static void test_truncation(void **state)
{
    (void)state;
    struct {
        verr_t e;
        char guard[64];
    } g;
    memset(&g, 'G', sizeof g);
    char longmsg[4000];
    memset(longmsg, 'm', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    char longcode[300];
    memset(longcode, 'C', sizeof longcode - 1);
    longcode[sizeof longcode - 1] = '\0';

    assert_int_equal(verr_set(&g.e, 400, longcode, "value '%s' is bad", longmsg), -1);
    assert_int_equal(strlen(g.e.message), sizeof g.e.message - 1);
    assert_memory_equal(g.e.message, "value 'mmm", 10);
    assert_int_equal(strlen(g.e.code), sizeof g.e.code - 1);
    assert_int_equal(g.e.code[0], 'C');
    assert_int_equal(g.e.http_status, 400);
    for (size_t i = 0; i < sizeof g.guard; i++)
        assert_int_equal(g.guard[i], 'G');
}

static void test_alloc(void **state)
{
    (void)state;
    char *p = xmalloc(0); /* zero bytes still gives a pointer to free */
    assert_non_null(p);
    free(p);
    int *z = xcalloc(16, sizeof *z);
    for (int i = 0; i < 16; i++)
        assert_int_equal(z[i], 0);
    z = xrealloc(z, 1024 * sizeof *z);
    assert_int_equal(z[15], 0);
    free(z);
    char *s = xstrdup("abc");
    assert_string_equal(s, "abc");
    free(s);
    s = xstrdup(NULL);
    assert_string_equal(s, "");
    free(s);
    s = xasprintf("%s-%05d", "i", 42);
    assert_string_equal(s, "i-00042");
    free(s);
}

static void test_autofree(void **state)
{
    (void)state;
    char *seen = NULL;
    {
        AUTOFREE char *s = xstrdup("scoped");
        seen = s;
        assert_string_equal(seen, "scoped");
    }
    /* freed at scope exit: under ASan a use here would be reported; the pointer
     * variable itself is reset by autofree_ptr, which we can check directly */
    char *q = xstrdup("x");
    autofree_ptr(&q);
    assert_null(q);
    assert_int_equal(ARRAY_LEN((int[7]){0}), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_fills_fields),
        cmocka_unit_test(test_null_safe),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_autofree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
