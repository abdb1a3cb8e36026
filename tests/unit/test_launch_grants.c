/* test_launch_grants.c - unit tests for services/compute/launch_grants.c (the launch
 * tasks' reuse of image.fetch_url's answers): an answer kept is given back as a copy for
 * the same account and image only; a change of the image forgets it; a grant with little
 * time left is not reused; reuse 0 keeps nothing; more keys than slots push out the
 * oldest. No timing is asserted (the reuse window is seconds; nothing here waits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "launch_grants.h"

static json_t *answer(const char *image, long long left_s)
{
    return json_pack("{s:s, s:s, s:I}", "image_id", image, "url", "http://127.0.0.1/x",
                     "expires", (json_int_t)(time(NULL) + left_s));
}

static void test_reused_for_same_account_and_image(void **st)
{
    (void)st;
    launch_grants_t *g = launch_grants_new(60);
    json_t *a = answer("ami-1", 3600);
    launch_grants_put(g, "111111111111", "ami-1", a);
    json_t *got = launch_grants_get(g, "111111111111", "ami-1");
    assert_non_null(got);
    assert_true(json_equal(got, a));
    assert_ptr_not_equal(got, a);   /* a copy: the task changes its own */
    assert_null(launch_grants_get(g, "222222222222", "ami-1"));
    assert_null(launch_grants_get(g, "111111111111", "ami-2"));
    json_decref(got);
    json_decref(a);
    launch_grants_free(g);
}

static void test_image_change_forgets(void **st)
{
    (void)st;
    launch_grants_t *g = launch_grants_new(60);
    json_t *a = answer("ami-1", 3600), *b = answer("ami-2", 3600);
    launch_grants_put(g, "111111111111", "ami-1", a);
    launch_grants_put(g, "222222222222", "ami-1", a);
    launch_grants_put(g, "111111111111", "ami-2", b);
    launch_grants_forget(g, "ami-1");
    assert_null(launch_grants_get(g, "111111111111", "ami-1"));
    assert_null(launch_grants_get(g, "222222222222", "ami-1"));
    json_t *got = launch_grants_get(g, "111111111111", "ami-2");
    assert_non_null(got);
    json_decref(got);
    json_decref(a);
    json_decref(b);
    launch_grants_free(g);
}

static void test_short_lived_grant_not_reused(void **st)
{
    (void)st;
    launch_grants_t *g = launch_grants_new(60);
    json_t *a = answer("ami-1", 120);   /* less than the margin a host's fetch needs */
    launch_grants_put(g, "111111111111", "ami-1", a);
    assert_null(launch_grants_get(g, "111111111111", "ami-1"));
    json_decref(a);
    launch_grants_free(g);
}

static void test_reuse_zero_keeps_nothing(void **st)
{
    (void)st;
    launch_grants_t *g = launch_grants_new(0);
    json_t *a = answer("ami-1", 3600);
    launch_grants_put(g, "111111111111", "ami-1", a);
    assert_null(launch_grants_get(g, "111111111111", "ami-1"));
    json_decref(a);
    launch_grants_free(g);
    launch_grants_free(NULL);
    assert_null(launch_grants_get(NULL, "111111111111", "ami-1"));
}

static void test_many_keys_bounded(void **st)
{
    (void)st;
    launch_grants_t *g = launch_grants_new(60);
    char img[32];
    for (int i = 0; i < 500; i++) {
        snprintf(img, sizeof img, "ami-%d", i);
        json_t *a = answer(img, 3600);
        launch_grants_put(g, "111111111111", img, a);
        json_decref(a);
    }
    json_t *last = launch_grants_get(g, "111111111111", "ami-499");
    assert_non_null(last);   /* the newest is kept whatever the bound */
    json_decref(last);
    launch_grants_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reused_for_same_account_and_image),
        cmocka_unit_test(test_image_change_forgets),
        cmocka_unit_test(test_short_lived_grant_not_reused),
        cmocka_unit_test(test_reuse_zero_keeps_nothing),
        cmocka_unit_test(test_many_keys_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
