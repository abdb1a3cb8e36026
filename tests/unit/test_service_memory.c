/* test_service_memory.c - common/service_memory.c: the memory.* keys are checked at
 * start (a bad value stops the service with its name, instead of malloc ignoring it), and
 * the trim gives back free memory that malloc would otherwise keep: free blocks between
 * blocks still in use, which no free() returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "service_memory.h"

/* Under AddressSanitizer malloc is ASan's own: glibc's malloc_trim has nothing to trim. */
#if defined(__SANITIZE_ADDRESS__)
#define ASAN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_MALLOC 1
#endif
#endif

static void test_defaults(void **state)
{
    (void)state;
    config_t *c = config_new();
    service_memory_opts_t o;
    verr_t e = {0};
    assert_int_equal(service_memory_setup(c, &o, &e), 0);
    assert_int_equal(o.malloc_arenas, 1);
    assert_int_equal(o.mmap_threshold_bytes, 0);
    assert_int_equal(o.trim_interval_s, SERVICE_MEMORY_TRIM_INTERVAL_S);
    config_free(c);
}

static void test_bad_values_are_refused(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"memory.malloc_arenas", "-1"},       {"memory.malloc_arenas", "257"},
        {"memory.mmap_threshold_bytes", "100"}, {"memory.mmap_threshold_bytes", "67108864"},
        {"memory.trim_interval_s", "-5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config_t *c = config_new();
        config_set(c, bad[i][0], bad[i][1]);
        verr_t e = {0};
        assert_int_equal(service_memory_setup(c, NULL, &e), -1);
        assert_non_null(strstr(e.message, bad[i][0]));
        config_free(c);
    }
}

static void test_trim_gives_back_free_blocks_between_used_ones(void **state)
{
    (void)state;
#ifdef ASAN_MALLOC
    skip();
#endif
    enum { N = 128, SIZE = 64 * 1024 };   /* under the mmap threshold: from the heap */
    char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(SIZE);
        assert_non_null(b[i]);
        memset(b[i], i, SIZE);   /* resident */
    }
    for (int i = 0; i < N; i += 2)
        free(b[i]);   /* 4 MiB free, but every block has a neighbour in use */
    long given = service_memory_trim();
    assert_true(given >= 2L * 1024 * 1024);
    for (int i = 1; i < N; i += 2) {
        assert_int_equal(b[i][SIZE - 1], (char)i);   /* what is still in use is intact */
        free(b[i]);
    }
}

/* A large message brings the trim forward to SERVICE_MEMORY_QUIET_MS after the last one
 * (its first wakes the main thread); a small one does not; the trim clears it. */
static void test_large_message_brings_the_trim_forward(void **state)
{
    (void)state;
    sem_t wake;
    sem_init(&wake, 0, 0);
    service_memory_wake_with(&wake);
    service_memory_note_message(SERVICE_MEMORY_LARGE_BYTES - 1);
    assert_int_equal(service_memory_burst_trim_at(), 0);
    assert_int_equal(sem_trywait(&wake), -1);   /* nobody woken for a small one */
    service_memory_note_message(SERVICE_MEMORY_LARGE_BYTES);
    assert_int_not_equal(service_memory_burst_trim_at(), 0);
    assert_int_equal(sem_trywait(&wake), 0);    /* the main thread sets its alarm */
    service_memory_note_message(2 * SERVICE_MEMORY_LARGE_BYTES);
    assert_int_equal(sem_trywait(&wake), -1);   /* once per burst */
    assert_int_equal(service_memory_trim_after_burst(), 0);   /* the burst may go on */
    usleep((SERVICE_MEMORY_QUIET_MS + 50) * 1000);
    assert_int_equal(service_memory_trim_after_burst(), 1);
    assert_int_equal(service_memory_burst_trim_at(), 0);
    assert_int_equal(service_memory_trim_after_burst(), 0);
    service_memory_wake_with(NULL);
    service_memory_note_message(SERVICE_MEMORY_LARGE_BYTES);   /* nobody to wake: no harm */
    usleep((SERVICE_MEMORY_QUIET_MS + 50) * 1000);
    assert_int_equal(service_memory_trim_after_burst(), 1);
    sem_destroy(&wake);
}

/* The timer's trim walks the heap only when work was done since the last trim: a
 * message of any size, or a reconcile pass. */
static void test_timer_trims_after_work_only(void **state)
{
    (void)state;
    service_memory_trim();
    assert_int_equal(service_memory_trim_if_busy(), 0);   /* idle: nothing new to give back */
    service_memory_note_message(100);
    assert_int_equal(service_memory_trim_if_busy(), 1);
    assert_int_equal(service_memory_trim_if_busy(), 0);
    service_memory_note_work();
    assert_int_equal(service_memory_trim_if_busy(), 1);
    assert_int_equal(service_memory_trim_if_busy(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_values_are_refused),
        cmocka_unit_test(test_trim_gives_back_free_blocks_between_used_ones),
        cmocka_unit_test(test_large_message_brings_the_trim_forward),
        cmocka_unit_test(test_timer_trims_after_work_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
