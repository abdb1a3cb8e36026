/* fuzz_sigv4.c - libFuzzer target for the request-facing parsers of common/sigv4.c: the
 * Authorization header (first input line) with its X-Amz-Date (second line), the
 * presigned query form (the whole input as a raw query string) and canonicalisation (the
 * whole input as both path and query, S3 rules when the first byte is odd). These see
 * attacker bytes before any signature is checked. A parse that succeeds is fed on to
 * sigv4_check_time and sigv4_verify so the parsed fields are exercised too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

/* The input as a C string (an embedded NUL simply ends it, as it would in a header). */
static char *cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Fixed-size fields of a parsed auth must be terminated within their buffers. */
static void check_auth(const sigv4_auth_t *a)
{
    if (strnlen(a->access_key, sizeof a->access_key) == sizeof a->access_key ||
        strnlen(a->date, sizeof a->date) == sizeof a->date ||
        strnlen(a->region, sizeof a->region) == sizeof a->region ||
        strnlen(a->service, sizeof a->service) == sizeof a->service ||
        strnlen(a->amz_date, sizeof a->amz_date) == sizeof a->amz_date ||
        strnlen(a->signed_headers, sizeof a->signed_headers) == sizeof a->signed_headers ||
        strnlen(a->signature, sizeof a->signature) == sizeof a->signature)
        __builtin_trap();
}

static void verify_with(const sigv4_auth_t *a, const char *path, const char *query, int s3)
{
    static const uint8_t key[SIGV4_KEY_LEN] = {1, 2, 3};
    sigv4_header_t h[] = {{"Host", "ec2.virga.test"}, {"X-Amz-Date", a->amz_date},
                          {"Content-Type", "application/x-www-form-urlencoded"}};
    sigv4_request_t r = {"POST", path, query, h, 3, NULL, s3};
    verr_t e;

    check_auth(a);
    (void)sigv4_check_time(a, 1440938160, 300, &e);
    (void)sigv4_verify(&r, a, key, &e);
}

static void fuzz_header(const char *all)
{
    const char *nl = strchr(all, '\n');
    size_t alen = nl ? (size_t)(nl - all) : strlen(all);
    char *auth = strndup(all, alen);
    char *date = strndup(nl ? nl + 1 : "", nl ? strcspn(nl + 1, "\n") : 0);
    sigv4_auth_t a;
    verr_t e;

    if (!auth || !date)
        abort();
    if (sigv4_parse_header(auth, date, &a, &e) == 0)
        verify_with(&a, "/", "", 0);
    free(auth);
    free(date);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *all = cstr(data, size);
    sigv4_auth_t a;
    verr_t e;

    fuzz_header(all);
    if (sigv4_parse_query(all, &a, &e) == 0)
        verify_with(&a, "/", all, 0);

    sigv4_header_t h[] = {{"host", "bucket.s3.virga.test"}, {"x-amz-date", "20150830T123600Z"}};
    sigv4_request_t r = {"GET", all, all, h, 2, "UNSIGNED-PAYLOAD", size ? data[0] & 1 : 0};
    char *creq = sigv4_canonical_request(&r, "host;x-amz-date", &e);
    free(creq);
    free(all);
    return 0;
}
