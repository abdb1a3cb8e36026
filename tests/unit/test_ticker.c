/* test_ticker.c - unit tests for common/ticker.c (the services' periodic threads): a
 * ticker started at_once makes its first pass without waiting a period; one started
 * without makes none before a wake; a wake makes a pass at once, and wakes that come
 * during a pass make exactly one more (none lost, none doubled); the period runs passes
 * by itself; a stop waits for the pass under way and no pass starts after it. Waits are
 * bounded (a pass that never comes fails the test after 10 s); nothing asserts a
 * duration beyond "it came" or "it did not come while a 60 s period ran". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "ticker.h"

typedef struct {
    int passes;       /* atomic */
    int in_pass;      /* atomic: 1 while fn runs */
    int hold_ms;      /* how long each pass takes */
    ticker_t *self;   /* for a pass that wakes its own ticker */
    int wake_self;
} counter_t;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void count(void *arg)
{
    counter_t *c = arg;
    __atomic_store_n(&c->in_pass, 1, __ATOMIC_SEQ_CST);
    if (c->hold_ms)
        sleep_ms(c->hold_ms);
    if (c->wake_self && __atomic_load_n(&c->passes, __ATOMIC_SEQ_CST) == 0)
        ticker_wake(c->self);
    __atomic_add_fetch(&c->passes, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&c->in_pass, 0, __ATOMIC_SEQ_CST);
}

static int passes(counter_t *c) { return __atomic_load_n(&c->passes, __ATOMIC_SEQ_CST); }

/* Wait (at most 10 s) until c has made at least n passes. */
static void wait_passes(counter_t *c, int n)
{
    for (int i = 0; i < 1000 && passes(c) < n; i++)
        sleep_ms(10);
    assert_true(passes(c) >= n);
}

static void first_pass_at_once_or_not(void **state)
{
    (void)state;
    verr_t e = {0};
    counter_t now = {0}, later = {0};
    ticker_t *a = ticker_start("t-now", 60000, 1, count, &now, &e);
    ticker_t *b = ticker_start("t-later", 60000, 0, count, &later, &e);
    assert_non_null(a);
    assert_non_null(b);
    wait_passes(&now, 1);
    sleep_ms(200);
    assert_int_equal(passes(&now), 1);     /* the next is a minute away */
    assert_int_equal(passes(&later), 0);   /* nothing before its period or a wake */
    ticker_wake(b);
    wait_passes(&later, 1);
    ticker_stop(a);
    ticker_stop(b);
}

static void wakes_during_a_pass_make_one_more(void **state)
{
    (void)state;
    verr_t e = {0};
    counter_t c = {.hold_ms = 300};
    ticker_t *t = ticker_start("t-busy", 60000, 1, count, &c, &e);
    assert_non_null(t);
    for (int i = 0; i < 500 && !__atomic_load_n(&c.in_pass, __ATOMIC_SEQ_CST); i++)
        sleep_ms(2);
    for (int i = 0; i < 5; i++)   /* five wakes while the first pass runs */
        ticker_wake(t);
    wait_passes(&c, 2);
    sleep_ms(800);   /* room for a wrongly doubled third pass to show */
    assert_int_equal(passes(&c), 2);
    ticker_stop(t);
}

static void a_pass_may_wake_its_own_ticker(void **state)
{
    (void)state;
    verr_t e = {0};
    counter_t c = {.wake_self = 1};
    c.self = ticker_start("t-self", 60000, 0, count, &c, &e);
    assert_non_null(c.self);
    ticker_wake(c.self);
    wait_passes(&c, 2);   /* the first pass asked for the second */
    ticker_stop(c.self);
}

static void the_period_runs_passes(void **state)
{
    (void)state;
    verr_t e = {0};
    counter_t c = {0};
    ticker_t *t = ticker_start("t-period", 20, 0, count, &c, &e);
    assert_non_null(t);
    wait_passes(&c, 3);
    ticker_set_period(t, 60000);
    ticker_stop(t);
}

static void stop_waits_for_the_pass_and_none_starts_after(void **state)
{
    (void)state;
    verr_t e = {0};
    counter_t c = {.hold_ms = 300};
    ticker_t *t = ticker_start("t-stop", 1, 1, count, &c, &e);
    assert_non_null(t);
    for (int i = 0; i < 500 && !__atomic_load_n(&c.in_pass, __ATOMIC_SEQ_CST); i++)
        sleep_ms(2);
    ticker_stop(t);
    assert_int_equal(__atomic_load_n(&c.in_pass, __ATOMIC_SEQ_CST), 0);   /* the pass ended first */
    int after = passes(&c);
    sleep_ms(100);
    assert_int_equal(passes(&c), after);
    ticker_wake(NULL);   /* harmless */
    ticker_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_pass_at_once_or_not),
        cmocka_unit_test(wakes_during_a_pass_make_one_more),
        cmocka_unit_test(a_pass_may_wake_its_own_ticker),
        cmocka_unit_test(the_period_runs_passes),
        cmocka_unit_test(stop_waits_for_the_pass_and_none_starts_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
