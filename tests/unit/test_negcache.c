/* test_negcache.c - unit tests for common/negcache.c (the memory of unknown names) and
 * common/metrics.c (histogram rendering): an added name is remembered until its TTL,
 * dropped names and everything-dropped are forgotten, names too long are never
 * remembered, a disabled cache remembers nothing, the table stays bounded however many
 * names go in; a histogram renders cumulative buckets that end in the count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "metrics.h"
#include "negcache.h"

static void remembers_until_ttl(void **state)
{
    (void)state;
    negcache_t *c = negcache_new(1, 64);
    assert_false(negcache_has(c, "AKIAUNKNOWN"));
    negcache_add(c, "AKIAUNKNOWN");
    assert_true(negcache_has(c, "AKIAUNKNOWN"));
    assert_false(negcache_has(c, "AKIAOTHER"));
    struct timespec ts = {2, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_false(negcache_has(c, "AKIAUNKNOWN"));
    negcache_free(c);
}

static void drop_forgets(void **state)
{
    (void)state;
    negcache_t *c = negcache_new(60, 64);
    negcache_add(c, "a");
    negcache_add(c, "b");
    negcache_drop(c, "a");
    assert_false(negcache_has(c, "a"));
    assert_true(negcache_has(c, "b"));
    negcache_drop(c, NULL);
    assert_false(negcache_has(c, "b"));
    negcache_drop(c, "never-added");   /* harmless */
    negcache_free(c);
}

static void bounded_and_disabled(void **state)
{
    (void)state;
    negcache_t *c = negcache_new(60, 64);
    char name[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof name, "AKIA%08d", i);
        negcache_add(c, name);
    }
    int remembered = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof name, "AKIA%08d", i);
        remembered += negcache_has(c, name);
    }
    assert_true(remembered > 0 && remembered <= 64);   /* a fixed table: at most its slots */
    char longname[NEGCACHE_KEY_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    negcache_add(c, longname);
    assert_false(negcache_has(c, longname));
    negcache_free(c);

    negcache_t *off = negcache_new(0, 64);
    negcache_add(off, "a");
    assert_false(negcache_has(off, "a"));
    negcache_free(off);
    negcache_free(NULL);
}

static void histogram_renders_cumulative(void **state)
{
    (void)state;
    metrics_hist_t h = {0};
    metrics_hist_observe(&h, 300);        /* 0.3 ms: first bucket */
    metrics_hist_observe(&h, 7000);       /* 7 ms: le 0.01 */
    metrics_hist_observe(&h, 60000000);   /* 60 s: +Inf only */
    strbuf_t out = {0};
    metrics_hist_render(&out, "x_seconds", "action=\"A\"", &h);
    assert_non_null(strstr(out.s, "x_seconds_bucket{action=\"A\",le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(out.s, "x_seconds_bucket{action=\"A\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(out.s, "x_seconds_bucket{action=\"A\",le=\"0.01\"} 2\n"));
    assert_non_null(strstr(out.s, "x_seconds_bucket{action=\"A\",le=\"10\"} 2\n"));
    assert_non_null(strstr(out.s, "x_seconds_bucket{action=\"A\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out.s, "x_seconds_count{action=\"A\"} 3\n"));
    assert_non_null(strstr(out.s, "x_seconds_sum{action=\"A\"} 60.007300\n"));
    free(out.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(remembers_until_ttl),
        cmocka_unit_test(drop_forgets),
        cmocka_unit_test(bounded_and_disabled),
        cmocka_unit_test(histogram_renders_cumulative),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
