/* test_keycache.c - unit tests for common/keycache.c without a bus: a put key is got
 * back with its owner until its TTL runs out; putting a scope again replaces it;
 * expired entries are freed (not only hidden) by the next put after a TTL, so a cache
 * that sees a new day's scopes every day does not grow; the cache never holds more
 * than its bound, dropping the oldest entries first; invalidation by owner field and
 * in full keeps the count right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "keycache.h"

static void put(keycache_t *c, const char *scope, const char *account)
{
    uint8_t key[SIGV4_KEY_LEN];
    memset(key, scope[strlen(scope) - 1], sizeof key);
    json_t *who = json_pack("{s:s, s:s}", "account_id", account, "access_key_id", scope);
    keycache_put(c, scope, key, who);
    json_decref(who);
}

static int has(keycache_t *c, const char *scope)
{
    uint8_t key[SIGV4_KEY_LEN];
    json_t *who = NULL;
    int hit = keycache_get(c, scope, key, &who);
    json_decref(who);
    return hit;
}

static void wait_s(int s)
{
    struct timespec ts = {s, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void test_get_put_replace(void **state)
{
    (void)state;
    keycache_t *c = keycache_new(60);
    assert_false(has(c, "AKIA1/20261206/us-east-1/ec2"));
    put(c, "AKIA1/20261206/us-east-1/ec2", "111111111111");
    uint8_t key[SIGV4_KEY_LEN];
    json_t *who = NULL;
    assert_int_equal(keycache_get(c, "AKIA1/20261206/us-east-1/ec2", key, &who), 1);
    assert_string_equal(json_string_value(json_object_get(who, "account_id")), "111111111111");
    json_decref(who);
    put(c, "AKIA1/20261206/us-east-1/ec2", "222222222222");   /* replaced, not added */
    assert_int_equal(keycache_size(c), 1);
    assert_int_equal(keycache_get(c, "AKIA1/20261206/us-east-1/ec2", key, &who), 1);
    assert_string_equal(json_string_value(json_object_get(who, "account_id")), "222222222222");
    json_decref(who);
    keycache_free(c);
}

/* Scopes change every day: yesterday's entries must be freed, not kept forever. */
static void test_expired_entries_are_freed(void **state)
{
    (void)state;
    keycache_t *c = keycache_new(1);
    char scope[64];
    for (int i = 0; i < 200; i++) {
        snprintf(scope, sizeof scope, "AKIA%d/20261205/us-east-1/s3", i);
        put(c, scope, "111111111111");
    }
    assert_int_equal(keycache_size(c), 200);
    wait_s(2);   /* past the TTL and the next sweep */
    assert_false(has(c, scope));
    put(c, "AKIA0/20261206/us-east-1/s3", "111111111111");   /* the next day's first key */
    assert_int_equal(keycache_size(c), 1);
    assert_true(has(c, "AKIA0/20261206/us-east-1/s3"));
    keycache_free(c);
}

static void test_bounded(void **state)
{
    (void)state;
    keycache_t *c = keycache_new_max(3600, 8);
    char scope[64];
    for (int i = 0; i < 100; i++) {
        snprintf(scope, sizeof scope, "AKIA%03d/20261206/us-east-1/ec2", i);
        put(c, scope, "111111111111");
        assert_true(keycache_size(c) <= 8);
    }
    assert_int_equal(keycache_size(c), 8);
    assert_true(has(c, scope));                                 /* the newest stays */
    assert_false(has(c, "AKIA000/20261206/us-east-1/ec2"));     /* the oldest went */
    keycache_free(c);
    c = keycache_new(60);   /* the default bound */
    for (int i = 0; i < KEYCACHE_MAX_ENTRIES + 50; i++) {
        snprintf(scope, sizeof scope, "AKIA%d/20261206/us-east-1/ec2", i);
        put(c, scope, "111111111111");
    }
    assert_int_equal(keycache_size(c), KEYCACHE_MAX_ENTRIES);
    keycache_free(c);
}

static void test_invalidate_counts(void **state)
{
    (void)state;
    keycache_t *c = keycache_new(60);
    put(c, "AKIAA/d/r/ec2", "111111111111");
    put(c, "AKIAB/d/r/ec2", "111111111111");
    put(c, "AKIAC/d/r/ec2", "222222222222");
    keycache_invalidate(c, "account_id", "111111111111");
    assert_int_equal(keycache_size(c), 1);
    assert_false(has(c, "AKIAA/d/r/ec2"));
    assert_true(has(c, "AKIAC/d/r/ec2"));
    keycache_invalidate(c, NULL, NULL);
    assert_int_equal(keycache_size(c), 0);
    keycache_free(c);
    keycache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put_replace),
        cmocka_unit_test(test_expired_entries_are_freed),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_invalidate_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
