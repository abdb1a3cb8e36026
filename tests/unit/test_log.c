/* test_log.c - unit tests for common/log.c: the text line carries the level, the
 * service name, the pid and (when one is set) the request id; the JSON-lines format
 * produces one parseable object per line with ts/level/service/pid/msg and
 * request_id only when set, also for messages that are not valid UTF-8; control
 * characters of messages and request ids escaped in both formats, so tenant input
 * cannot forge a line; lines below the minimum level are dropped; the request
 * id is per thread; log_level_parse maps the four names and rejects anything else.
 * log.c writes to the process' stderr, so each test points fd 2 at a temporary
 * file for the duration of the calls and reads the file back. stderr is restored
 * before any assertion so cmocka's own failure messages stay visible. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

/* ---- stderr capture ------------------------------------------------------------ */

static int saved_fd = -1;
static FILE *cap;

static void capture_begin(void)
{
    fflush(stderr);
    cap = tmpfile();
    assert_non_null(cap);
    saved_fd = dup(STDERR_FILENO);
    assert_true(saved_fd >= 0);
    assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
}

/* Restore fd 2 and return everything written meanwhile (caller frees). */
static char *capture_end(void)
{
    fflush(stderr);
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    saved_fd = -1;
    fseek(cap, 0, SEEK_END);
    long n = ftell(cap);
    rewind(cap);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    if (n > 0 && fread(buf, 1, (size_t)n, cap) != (size_t)n) {
        fclose(cap);
        free(buf);
        fail_msg("short read of captured stderr");
    }
    fclose(cap);
    cap = NULL;
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* log.c keeps its settings in globals: every test starts from a known state. */
static int reset(void **state)
{
    (void)state;
    log_init("unit", "debug", "text");
    log_set_request_id(NULL);
    return 0;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_level_parse(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("info"), LOG_INFO);
    assert_int_equal(log_level_parse("warn"), LOG_WARN);
    assert_int_equal(log_level_parse("error"), LOG_ERROR);
    assert_int_equal(log_level_parse(NULL), -1);
    assert_int_equal(log_level_parse(""), -1);
    assert_int_equal(log_level_parse("verbose"), -1);
    assert_int_equal(log_level_parse("infos"), -1);   /* not a prefix match */
    assert_int_equal(log_level_parse("inf"), -1);
}

static void test_text_format(void **state)
{
    (void)state;
    log_init("compute", "debug", "text");
    char pidtag[64];
    snprintf(pidtag, sizeof pidtag, "compute[%d] ", (int)getpid());

    capture_begin();
    log_info("hello %s %d", "world", 42);
    log_set_request_id("req-123");
    log_warn("with id");
    log_set_request_id(NULL);
    log_error("after clear");
    char *out = capture_end();

    assert_int_equal(count_lines(out), 3);
    char *l1 = out, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    l2[-1] = l3[-1] = 0;
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ level service[pid] [rid] msg" */
    assert_int_equal(strlen(l1) > 25 && l1[4] == '-' && l1[10] == 'T' && l1[23] == 'Z', 1);
    assert_non_null(strstr(l1, " info "));
    assert_non_null(strstr(l1, pidtag));
    assert_non_null(strstr(l1, "hello world 42"));
    assert_null(strstr(l1, "req-123"));
    assert_non_null(strstr(l2, " warn "));
    assert_non_null(strstr(l2, "[req-123] with id"));
    assert_non_null(strstr(l3, " error "));
    assert_null(strstr(l3, "req-123"));   /* NULL cleared the id */
    assert_non_null(strstr(l3, "after clear"));
    free(out);
}

static void test_json_format(void **state)
{
    (void)state;
    log_init("identity", "info", "json");
    capture_begin();
    log_info("plain \"quoted\" and\nnewline");
    log_set_request_id("rid-json-1");
    log_error("failed %d", 7);
    char *out = capture_end();

    /* A message with a newline is one line, and its text is escaped as in text mode. */
    assert_int_equal(count_lines(out), 2);
    char *l2 = strchr(out, '\n') + 1;
    l2[-1] = 0;

    json_error_t je;
    json_t *a = json_loads(out, 0, &je);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_object_get(a, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(a, "service")), "identity");
    assert_string_equal(json_string_value(json_object_get(a, "msg")), "plain \"quoted\" and\\nnewline");
    assert_int_equal(json_integer_value(json_object_get(a, "pid")), getpid());
    const char *ts = json_string_value(json_object_get(a, "ts"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[23], 'Z');
    assert_null(json_object_get(a, "request_id"));   /* absent when no id is set */
    json_decref(a);

    json_t *b = json_loads(l2, 0, &je);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "level")), "error");
    assert_string_equal(json_string_value(json_object_get(b, "msg")), "failed 7");
    assert_string_equal(json_string_value(json_object_get(b, "request_id")), "rid-json-1");
    json_decref(b);
    free(out);
}

/* A message that is not valid UTF-8 (a raw path byte, a foreign error string) must
 * still produce a record with its level and service: jansson refuses such strings,
 * and losing the whole line (or printing "{}") would hide the very errors that
 * carry odd bytes. */
static void test_json_invalid_utf8(void **state)
{
    (void)state;
    log_init("gateway", "info", "json");
    capture_begin();
    log_error("bad byte \xff in path /a\xc3");
    char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    json_error_t je;
    json_t *o = json_loads(out, JSON_DISABLE_EOF_CHECK, &je);
    free(out);
    assert_non_null(o);
    const char *lvl = json_string_value(json_object_get(o, "level"));
    const char *svc = json_string_value(json_object_get(o, "service"));
    const char *msg = json_string_value(json_object_get(o, "msg"));
    int ok = lvl && !strcmp(lvl, "error") && svc && !strcmp(svc, "gateway") && msg && strstr(msg, "bad byte");
    json_decref(o);
    assert_true(ok);
}

/* Tenant input quoted in a message (a decoded key, a user name) must not forge a line
 * or hide text from a reader: every control character is escaped, in both formats,
 * and so are the request id and bytes that are not UTF-8. */
static void test_control_characters_escaped(void **state)
{
    (void)state;
    const char *forged = "key a\n2026-01-01T00:00:00.000Z info  identity[1] admin logged in\r\x1b[2J\x7f"
                         "\xc2\x85nel\xe2\x80\xa8ls\ttab\xff back\\slash \x01 \xc3\xa9t\xc3\xa9";
    const char *want = "key a\\n2026-01-01T00:00:00.000Z info  identity[1] admin logged in\\r\\x1b[2J\\x7f"
                       "\\u0085nel\\u2028ls\\ttab\\xff back\\\\slash \\x01 \xc3\xa9t\xc3\xa9";
    log_init("identity", "info", "text");
    capture_begin();
    log_set_request_id("rid\nforged");
    log_info("user %s", forged);
    log_set_request_id(NULL);
    char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "[rid\\nforged]"));
    for (const char *c = out; *c; c++)
        assert_true(*c == '\n' ? c[1] == 0 : ((unsigned char)*c >= 0x20 && *c != 0x7f));
    free(out);

    log_init("identity", "info", "json");
    capture_begin();
    log_set_request_id("rid\nforged");
    log_info("user %s", forged);
    log_set_request_id(NULL);
    out = capture_end();
    assert_int_equal(count_lines(out), 1);
    json_error_t je;
    json_t *o = json_loads(out, JSON_DISABLE_EOF_CHECK, &je);
    free(out);
    assert_non_null(o);
    char expect[1024];
    snprintf(expect, sizeof expect, "user %s", want);
    int msg_ok = !strcmp(json_string_value(json_object_get(o, "msg")), expect);
    int rid_ok = !strcmp(json_string_value(json_object_get(o, "request_id")), "rid\\nforged");
    json_decref(o);
    assert_true(msg_ok);
    assert_true(rid_ok);

    char esc[64];
    log_escape("", esc);
    assert_string_equal(esc, "");
    log_escape("plain text: a/b?c=d", esc);
    assert_string_equal(esc, "plain text: a/b?c=d");
    log_escape("\xe2\x82", esc);   /* a character cut short */
    assert_string_equal(esc, "\\xe2\\x82");
}

static void test_min_level(void **state)
{
    (void)state;
    log_init("svc", "warn", "text");
    capture_begin();
    log_debug("d-dropped");
    log_info("i-dropped");
    log_warn("w-kept");
    log_error("e-kept");
    vlog(LOG_ERROR + 1, "out of range");   /* not a level: dropped, not a crash */
    vlog(-1, "negative");
    char *out = capture_end();
    assert_int_equal(count_lines(out), 2);
    assert_null(strstr(out, "dropped"));
    assert_non_null(strstr(out, "w-kept"));
    assert_non_null(strstr(out, "e-kept"));
    assert_null(strstr(out, "out of range"));
    assert_null(strstr(out, "negative"));
    free(out);

    /* An unknown level name keeps the current minimum rather than opening the tap. */
    log_init("svc", "bogus", "text");
    capture_begin();
    log_info("still-dropped");
    char *out2 = capture_end();
    assert_string_equal(out2, "");
    free(out2);

    log_init("svc", "debug", "text");
    capture_begin();
    log_debug("now-kept");
    char *out3 = capture_end();
    assert_non_null(strstr(out3, " debug "));
    assert_non_null(strstr(out3, "now-kept"));
    free(out3);
}

static void *other_thread(void *arg)
{
    /* A new thread starts without an id, whatever the main thread set. */
    char *seen = arg;
    snprintf(seen, 80, "%s", log_request_id());
    log_set_request_id("thread-id");
    return NULL;
}

static void test_request_id_thread_local(void **state)
{
    (void)state;
    assert_string_equal(log_request_id(), "");
    log_set_request_id("main-id");
    assert_string_equal(log_request_id(), "main-id");
    char seen[80] = "unset";
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, seen), 0);
    pthread_join(t, NULL);
    assert_string_equal(seen, "");
    assert_string_equal(log_request_id(), "main-id");   /* the thread's set did not leak */
    log_set_request_id(NULL);
    assert_string_equal(log_request_id(), "");
}

static void test_long_message_truncated(void **state)
{
    (void)state;
    /* Messages are bounded (2 KiB buffer): a huge one is cut, not overflowed, and
     * the JSON line stays valid. */
    size_t n = 10000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = 0;
    log_init("svc", "info", "json");
    capture_begin();
    log_info("%s", big);
    char *out = capture_end();
    free(big);
    json_error_t je;
    json_t *o = json_loads(out, JSON_DISABLE_EOF_CHECK, &je);
    assert_non_null(o);
    size_t len = strlen(json_string_value(json_object_get(o, "msg")));
    assert_true(len > 1000 && len < n);
    json_decref(o);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_level_parse, reset),
        cmocka_unit_test_setup(test_text_format, reset),
        cmocka_unit_test_setup(test_json_format, reset),
        cmocka_unit_test_setup(test_json_invalid_utf8, reset),
        cmocka_unit_test_setup(test_control_characters_escaped, reset),
        cmocka_unit_test_setup(test_min_level, reset),
        cmocka_unit_test_setup(test_request_id_thread_local, reset),
        cmocka_unit_test_setup(test_long_message_truncated, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
