/* test_config.c - unit tests for common/config.c: YAML flattening into dotted keys,
 * sequences joined with commas, the override order (--set > VIRGA_* environment >
 * file > default), int and bool parsing, and the InvalidConfig errors for bad YAML,
 * missing files and malformed --set. Each test cleans the environment it touched so
 * tests do not leak into one another. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static const char *yaml =
    "# Virga test config\n"
    "db:\n"
    "  url: postgres://file/virga\n"
    "  pool: 8\n"
    "http:\n"
    "  port: 8080\n"
    "  max-body: 1048576\n"
    "  tls:\n"
    "    enabled: true\n"
    "    cert: /etc/virga/cert.pem\n"
    "  timeout: 30\n"
    "bus:\n"
    "  brokers: [kafka1:9092, kafka2:9092]\n"
    "  topics:\n"
    "    - compute\n"
    "    - \"network, routes\"\n"
    "  group: g1\n"
    "name: devcloud\n"
    "quoted: \"a: b # not a comment\"\n";

static const char *touched_env[] = {"VIRGA_DB_URL", "VIRGA_HTTP_PORT", "VIRGA_HTTP_MAX_BODY",
                                    "VIRGA_CONFIG", "VIRGA_FLAG", "VIRGA_NUM"};

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof touched_env / sizeof *touched_env; i++)
        unsetenv(touched_env[i]);
    return 0;
}

static config_t *loaded(void)
{
    config_t *c = config_new();
    verr_t e = {0};
    if (config_load_string(c, yaml, &e) != 0)
        fail_msg("load failed: %s %s", e.code, e.message);
    return c;
}

/* Write text to a fresh temporary file; returns its path (caller unlinks and frees). */
static char *temp_file(const char *text)
{
    char *path = strdup("/tmp/virga-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static void test_nesting(void **state)
{
    (void)state;
    config_t *c = loaded();
    assert_string_equal(config_str(c, "db.url", NULL), "postgres://file/virga");
    assert_string_equal(config_str(c, "db.pool", NULL), "8");
    assert_string_equal(config_str(c, "http.port", NULL), "8080");
    assert_string_equal(config_str(c, "http.tls.enabled", NULL), "true");
    assert_string_equal(config_str(c, "http.tls.cert", NULL), "/etc/virga/cert.pem");
    /* a key after a nested mapping goes back to the parent level */
    assert_string_equal(config_str(c, "http.timeout", NULL), "30");
    assert_string_equal(config_str(c, "bus.group", NULL), "g1");
    assert_string_equal(config_str(c, "name", NULL), "devcloud");
    assert_string_equal(config_str(c, "quoted", NULL), "a: b # not a comment");
    /* intermediate mappings are not values, and nothing leaks across levels */
    assert_null(config_str(c, "http", NULL));
    assert_null(config_str(c, "http.tls", NULL));
    assert_null(config_str(c, "tls.enabled", NULL));
    assert_null(config_str(c, "enabled", NULL));
    assert_null(config_str(c, "timeout", NULL));
    assert_string_equal(config_str(c, "missing.key", "fallback"), "fallback");
    config_free(c);
}

static void test_sequences(void **state)
{
    (void)state;
    config_t *c = loaded();
    assert_string_equal(config_str(c, "bus.brokers", NULL), "kafka1:9092,kafka2:9092");
    assert_string_equal(config_str(c, "bus.topics", NULL), "compute,network, routes");
    config_free(c);

    c = config_new();
    assert_int_equal(config_load_string(c, "a: []\nb: [x]\nc:\n  - 1\n  - 2\n  - 3\nd: 4\n",
                                        NULL), 0);
    assert_null(config_str(c, "a", NULL));
    assert_string_equal(config_str(c, "b", NULL), "x");
    assert_string_equal(config_str(c, "c", NULL), "1,2,3");
    assert_string_equal(config_str(c, "d", NULL), "4");
    config_free(c);
}

static void test_later_value_wins(void **state)
{
    (void)state;
    config_t *c = config_new();
    assert_int_equal(config_load_string(c, "a: 1\nb: 2\n", NULL), 0);
    assert_int_equal(config_load_string(c, "a: 3\n", NULL), 0);
    assert_string_equal(config_str(c, "a", NULL), "3");
    assert_string_equal(config_str(c, "b", NULL), "2");
    config_free(c);
}

static void test_env_overrides_file(void **state)
{
    (void)state;
    config_t *c = loaded();
    setenv("VIRGA_DB_URL", "postgres://env/virga", 1);
    setenv("VIRGA_HTTP_MAX_BODY", "2048", 1); /* '-' becomes '_' */
    assert_string_equal(config_str(c, "db.url", NULL), "postgres://env/virga");
    assert_int_equal(config_int(c, "http.max-body", 0), 2048);
    /* the environment also answers for keys the file does not have */
    assert_string_equal(config_str(NULL, "db.url", NULL), "postgres://env/virga");
    unsetenv("VIRGA_DB_URL");
    assert_string_equal(config_str(c, "db.url", NULL), "postgres://file/virga");
    config_free(c);
}

static void test_set_overrides_env(void **state)
{
    (void)state;
    config_t *c = loaded();
    setenv("VIRGA_DB_URL", "postgres://env/virga", 1);
    config_set(c, "db.url", "postgres://cli/virga");
    assert_string_equal(config_str(c, "db.url", NULL), "postgres://cli/virga");
    config_set(c, "db.url", "postgres://cli2/virga"); /* a later --set replaces */
    assert_string_equal(config_str(c, "db.url", NULL), "postgres://cli2/virga");
    config_free(c);
}

static void test_parse_args(void **state)
{
    (void)state;
    char *path = temp_file("db:\n  url: postgres://file/virga\nhttp:\n  port: 8080\n");
    setenv("VIRGA_DB_URL", "postgres://env/virga", 1);
    setenv("VIRGA_HTTP_PORT", "9090", 1);
    char *argv[] = {"virga-compute", "serve", "-c", path, "--set", "db.url=postgres://cli/x=y",
                    "--verbose", "--set", "extra.key=1", NULL};
    int argc = (int)(sizeof argv / sizeof *argv) - 1;
    char *rest[8] = {0};
    int nrest = -1;
    verr_t e = {0};
    config_t *c = config_new();
    assert_int_equal(config_parse_args(c, argc, argv, &nrest, rest, &e), 6);
    assert_int_equal(nrest, 2);
    assert_string_equal(rest[0], "serve");
    assert_string_equal(rest[1], "--verbose");
    /* --set beats the environment, which beats the file; the value may hold '=' */
    assert_string_equal(config_str(c, "db.url", NULL), "postgres://cli/x=y");
    assert_int_equal(config_int(c, "http.port", 0), 9090);
    unsetenv("VIRGA_HTTP_PORT");
    assert_int_equal(config_int(c, "http.port", 0), 8080);
    assert_int_equal(config_int(c, "extra.key", 0), 1);
    config_free(c);

    /* --config and $VIRGA_CONFIG name the file too */
    c = config_new();
    char *argv2[] = {"p", "--config", path, NULL};
    assert_int_equal(config_parse_args(c, 3, argv2, NULL, NULL, &e), 2);
    assert_int_equal(config_int(c, "http.port", 0), 8080);
    config_free(c);
    c = config_new();
    setenv("VIRGA_CONFIG", path, 1);
    char *argv3[] = {"p", NULL};
    assert_int_equal(config_parse_args(c, 1, argv3, NULL, NULL, &e), 0);
    assert_int_equal(config_int(c, "http.port", 0), 8080);
    config_free(c);

    unlink(path);
    free(path);
}

static void test_parse_args_errors(void **state)
{
    (void)state;
    static const char *bad_set[] = {"novalue", "=value"};
    for (size_t i = 0; i < 2; i++) {
        config_t *c = config_new();
        char *argv[] = {"p", "--set", (char *)bad_set[i], NULL};
        verr_t e = {0};
        assert_int_equal(config_parse_args(c, 3, argv, NULL, NULL, &e), -1);
        assert_string_equal(e.code, "InvalidConfig");
        config_free(c);
    }
    config_t *c = config_new();
    char *argv[] = {"p", "-c", "/nonexistent/virga.yaml", NULL};
    verr_t e = {0};
    assert_int_equal(config_parse_args(c, 3, argv, NULL, NULL, &e), -1);
    assert_string_equal(e.code, "InvalidConfig");
    assert_non_null(strstr(e.message, "/nonexistent/virga.yaml"));
    config_free(c);
}

static void test_int_and_bool(void **state)
{
    (void)state;
    config_t *c = config_new();
    assert_int_equal(config_load_string(c,
        "n: 42\nneg: -7\nzero: 0\nhuge: 99999999999999999999999\nword: twelve\n"
        "trail: 12abc\nempty: ''\nfloat: 1.5\n"
        "t1: true\nt2: YES\nt3: 1\nt4: on\nf1: false\nf2: No\nf3: 0\nf4: OFF\nb: maybe\n",
        NULL), 0);
    assert_int_equal(config_int(c, "n", -1), 42);
    assert_int_equal(config_int(c, "neg", -1), -7);
    assert_int_equal(config_int(c, "zero", -1), 0);
    assert_int_equal(config_int(c, "huge", -1), -1);
    assert_int_equal(config_int(c, "word", -1), -1);
    assert_int_equal(config_int(c, "trail", -1), -1);
    assert_int_equal(config_int(c, "empty", -1), -1);
    assert_int_equal(config_int(c, "float", -1), -1);
    assert_int_equal(config_int(c, "missing", 77), 77);

    static const char *truthy[] = {"t1", "t2", "t3", "t4"};
    static const char *falsy[] = {"f1", "f2", "f3", "f4"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(config_bool(c, truthy[i], 0), 1);
        assert_int_equal(config_bool(c, falsy[i], 1), 0);
    }
    assert_int_equal(config_bool(c, "b", 5), 5);
    assert_int_equal(config_bool(c, "n", 5), 5);
    assert_int_equal(config_bool(c, "missing", 1), 1);
    assert_int_equal(config_bool(c, "missing", 0), 0);

    /* values from the environment go through the same parsing */
    setenv("VIRGA_NUM", "123", 1);
    setenv("VIRGA_FLAG", "off", 1);
    assert_int_equal(config_int(c, "num", 0), 123);
    assert_int_equal(config_bool(c, "flag", 1), 0);
    config_free(c);
}

static void test_bad_yaml(void **state)
{
    (void)state;
    static const char *bad[] = {
        "a: [1, 2\n",
        "a: b: c\n",
        "a:\n  - x\n  y: 1\n",
        "a: \"unterminated\n",
        "a:\n\t- tab\n",
        "list:\n  - name: x\n",   /* a mapping inside a list is refused */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        config_t *c = config_new();
        verr_t e = {0};
        assert_int_equal(config_load_string(c, bad[i], &e), -1);
        assert_string_equal(e.code, "InvalidConfig");
        assert_int_equal(e.http_status, 400);
        assert_true(e.message[0] != '\0');
        config_free(c);
    }
    /* deeper than the parser's stack */
    char deep[2048] = "";
    for (int i = 0; i < 40; i++) {
        char line[80];
        snprintf(line, sizeof line, "%*sk%d:\n", 2 * i, "", i);
        strncat(deep, line, sizeof deep - strlen(deep) - 1);
    }
    char last[100];
    snprintf(last, sizeof last, "%*sv: 1\n", 80, "");
    strncat(deep, last, sizeof deep - strlen(deep) - 1);
    config_t *c = config_new();
    verr_t e = {0};
    assert_int_equal(config_load_string(c, deep, &e), -1);
    assert_string_equal(e.code, "InvalidConfig");
    config_free(c);

    /* an empty document is fine */
    c = config_new();
    assert_int_equal(config_load_string(c, "", &e), 0);
    config_free(c);
}

/* YAML features config does not model are refused, not misread; nulls mean "unset";
 * a list in a later document replaces the earlier value. */
static void test_yaml_edges(void **state)
{
    (void)state;
    verr_t e = {0};
    config_t *c = config_new();
    assert_int_equal(config_load_string(c, "base: &b 5\nother: *b\nthird: 7\n", &e), -1);
    assert_string_equal(e.code, "InvalidConfig");
    assert_non_null(strstr(e.message, "alias"));
    config_free(c);

    c = config_new();
    assert_int_equal(config_load_string(c, "x: [[1, 2], 3]\n", &e), -1);
    assert_string_equal(e.code, "InvalidConfig");
    config_free(c);

    c = config_new();
    assert_int_equal(config_load_string(c, "a: ~\nb: null\nc: 'null'\nd: 4\n", &e), 0);
    assert_string_equal(config_str(c, "a", "dflt"), "dflt");
    assert_string_equal(config_str(c, "b", "dflt"), "dflt");
    assert_string_equal(config_str(c, "c", "dflt"), "null");
    assert_int_equal(config_int(c, "d", 0), 4);
    assert_int_equal(config_load_string(c, "l: [a, b]\ns: one\n", &e), 0);
    assert_int_equal(config_load_string(c, "l: [c]\ns: [two, three]\nd: ~\n", &e), 0);
    assert_string_equal(config_str(c, "l", ""), "c");
    assert_string_equal(config_str(c, "s", ""), "two,three");
    assert_int_equal(config_int(c, "d", 9), 9);
    config_free(c);
}

static void test_files(void **state)
{
    (void)state;
    config_t *c = config_new();
    verr_t e = {0};
    assert_int_equal(config_load_file(c, "/nonexistent/dir/virga.yaml", &e), -1);
    assert_string_equal(e.code, "InvalidConfig");
    assert_non_null(strstr(e.message, "/nonexistent/dir/virga.yaml"));

    char *path = temp_file("db:\n  url: from-file\n");
    assert_int_equal(config_load_file(c, path, &e), 0);
    assert_string_equal(config_str(c, "db.url", NULL), "from-file");
    unlink(path);
    free(path);

    /* a parse error in a file names the file */
    path = temp_file("a: [1,\n");
    verr_clear(&e);
    assert_int_equal(config_load_file(c, path, &e), -1);
    assert_string_equal(e.code, "InvalidConfig");
    assert_non_null(strstr(e.message, path));
    unlink(path);
    free(path);
    config_free(c);
    config_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_nesting, clean_env),
        cmocka_unit_test_teardown(test_sequences, clean_env),
        cmocka_unit_test_teardown(test_later_value_wins, clean_env),
        cmocka_unit_test_teardown(test_env_overrides_file, clean_env),
        cmocka_unit_test_teardown(test_set_overrides_env, clean_env),
        cmocka_unit_test_teardown(test_parse_args, clean_env),
        cmocka_unit_test_teardown(test_parse_args_errors, clean_env),
        cmocka_unit_test_teardown(test_int_and_bool, clean_env),
        cmocka_unit_test_teardown(test_bad_yaml, clean_env),
        cmocka_unit_test_teardown(test_files, clean_env),
        cmocka_unit_test_teardown(test_yaml_edges, clean_env),
    };
    return cmocka_run_group_tests(tests, clean_env, NULL);
}
