/* test_sigv4.c - unit tests for common/sigv4.c: AWS's documented IAM worked example,
 * vectors produced by botocore (the signer inside awscli and boto3) for EC2-style
 * paths and queries, S3 keys and S3 presigned URLs, the RFC 4231 HMAC vectors, the
 * time window, and a pile of malformed Authorization headers that must be refused
 * cleanly. A vector from a real client is the only proof that a byte of the canonical
 * request is right, so most expectations here are copied from one, not computed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sigv4.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define IAM_AUTH                                                                          \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "     \
    "SignedHeaders=content-type;host;x-amz-date, "                                      \
    "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
#define IAM_SIG "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"

/* 2015-08-30T12:36:00Z */
static const time_t T0 = 1440938160;

static const sigv4_header_t iam_headers[] = {
    {"Host", "iam.amazonaws.com"},
    {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
    {"X-Amz-Date", "20150830T123600Z"},
};

static sigv4_request_t iam_request(void)
{
    return (sigv4_request_t){
        .method = "GET", .path = "/", .query = "Action=ListUsers&Version=2010-05-08",
        .headers = iam_headers, .nheaders = ARRAY_LEN(iam_headers),
        .payload_hash = EMPTY_HASH, .s3 = 0,
    };
}

static void key_for(const char *secret, const char *service, uint8_t key[SIGV4_KEY_LEN])
{
    sigv4_signing_key(secret, "20150830", "us-east-1", service, key);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The second line of the canonical request: the canonical URI. */
static char *canon_uri(const char *path, int s3, verr_t *e)
{
    sigv4_request_t r = {.method = "GET", .path = path, .query = "",
                         .headers = iam_headers, .nheaders = 1, .payload_hash = EMPTY_HASH,
                         .s3 = s3};
    char *c = sigv4_canonical_request(&r, "host", e);
    if (!c)
        return NULL;
    char *start = strchr(c, '\n') + 1;
    char *end = strchr(start, '\n');
    char *uri = strndup(start, (size_t)(end - start));
    free(c);
    return uri;
}

static char *canon_query(const char *query, verr_t *e)
{
    sigv4_request_t r = {.method = "GET", .path = "/", .query = query,
                         .headers = iam_headers, .nheaders = 1, .payload_hash = EMPTY_HASH};
    char *c = sigv4_canonical_request(&r, "host", e);
    if (!c)
        return NULL;
    char *start = strchr(strchr(c, '\n') + 1, '\n') + 1;
    char *end = strchr(start, '\n');
    char *q = strndup(start, (size_t)(end - start));
    free(c);
    return q;
}

/* ---- primitives ---------------------------------------------------------------- */

static void test_sha256_hex(void **state)
{
    (void)state;
    char out[65];
    sigv4_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sigv4_sha256_hex("", 0, out);
    assert_string_equal(out, EMPTY_HASH);
    sigv4_sha256_hex(NULL, 0, out);
    assert_string_equal(out, EMPTY_HASH);
}

/* RFC 4231 cases 1 and 6: a 20-byte key, and a 131-byte key longer than the block. */
static void test_hmac_rfc4231(void **state)
{
    (void)state;
    uint8_t key[131], mac[32];
    char h[65];

    memset(key, 0x0b, 20);
    sigv4_hmac(key, 20, "Hi There", 8, mac);
    hex(mac, 32, h);
    assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    memset(key, 0xaa, sizeof key);
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    sigv4_hmac(key, sizeof key, msg, strlen(msg), mac);
    hex(mac, 32, h);
    assert_string_equal(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_uri_encode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int keep_slash;
        const char *out;
    } cases[] = {
        {"AZaz09-_.~", 0, "AZaz09-_.~"},
        {"a b", 0, "a%20b"},
        {"a/b", 0, "a%2Fb"},
        {"a/b", 1, "a/b"},
        {"a+b=c&d", 1, "a%2Bb%3Dc%26d"},
        {"100%", 0, "100%25"},
        {"*!'()", 0, "%2A%21%27%28%29"},
        {"caf\xc3\xa9", 0, "caf%C3%A9"},
        {"\xe1\x88\xb4", 1, "%E1%88%B4"},
        {"", 0, ""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *s = sigv4_uri_encode(cases[i].in, strlen(cases[i].in), cases[i].keep_slash);
        assert_string_equal(s, cases[i].out);
        free(s);
    }
    char *s = sigv4_uri_encode("a\0b", 3, 0); /* the length, not a NUL, ends the input */
    assert_string_equal(s, "a%00b");
    free(s);
    s = sigv4_uri_encode(NULL, 5, 1);
    assert_string_equal(s, "");
    free(s);
}

/* ---- AWS's documented example -------------------------------------------------- */

static void test_aws_example_canonical_request(void **state)
{
    (void)state;
    sigv4_request_t r = iam_request();
    verr_t e = {0};
    char *c = sigv4_canonical_request(&r, "content-type;host;x-amz-date", &e);
    assert_non_null(c);
    assert_string_equal(c, "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
                           "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
                           "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                           "content-type;host;x-amz-date\n" EMPTY_HASH);
    char h[65];
    sigv4_sha256_hex(c, strlen(c), h);
    assert_string_equal(h, "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");

    char *sts = sigv4_string_to_sign("20150830T123600Z", "20150830", "us-east-1", "iam", c);
    assert_string_equal(sts, "AWS4-HMAC-SHA256\n20150830T123600Z\n"
                             "20150830/us-east-1/iam/aws4_request\n"
                             "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
    free(sts);
    free(c);
}

static void test_aws_example_signing_key(void **state)
{
    (void)state;
    uint8_t key[SIGV4_KEY_LEN];
    char h[65];
    key_for(SECRET, "iam", key);
    hex(key, sizeof key, h);
    assert_string_equal(h, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

static void test_aws_example_signature(void **state)
{
    (void)state;
    sigv4_request_t r = iam_request();
    uint8_t key[SIGV4_KEY_LEN];
    char sig[65];
    key_for(SECRET, "iam", key);
    char *c = sigv4_canonical_request(&r, "content-type;host;x-amz-date", NULL);
    char *sts = sigv4_string_to_sign("20150830T123600Z", "20150830", "us-east-1", "iam", c);
    sigv4_sign(key, sts, sig);
    assert_string_equal(sig, IAM_SIG);
    free(c);
    free(sts);
}

static void test_aws_example_parse_header(void **state)
{
    (void)state;
    sigv4_auth_t a;
    verr_t e = {0};
    memset(&a, 0x5a, sizeof a);
    assert_int_equal(sigv4_parse_header(IAM_AUTH, "20150830T123600Z", &a, &e), 0);
    assert_string_equal(a.access_key, "AKIDEXAMPLE");
    assert_string_equal(a.date, "20150830");
    assert_string_equal(a.region, "us-east-1");
    assert_string_equal(a.service, "iam");
    assert_string_equal(a.amz_date, "20150830T123600Z");
    assert_string_equal(a.signed_headers, "content-type;host;x-amz-date");
    assert_string_equal(a.signature, IAM_SIG);
    assert_int_equal(a.presigned, 0);
    assert_int_equal(a.expires, 0);
}

static void test_aws_example_verify(void **state)
{
    (void)state;
    sigv4_request_t r = iam_request();
    sigv4_auth_t a;
    uint8_t key[SIGV4_KEY_LEN];
    verr_t e = {0};
    key_for(SECRET, "iam", key);
    assert_int_equal(sigv4_parse_header(IAM_AUTH, "20150830T123600Z", &a, &e), 0);
    assert_int_equal(sigv4_verify(&r, &a, key, &e), 0);
    assert_int_equal(sigv4_check_time(&a, T0 + 10, 900, &e), 0);
}

static void expect_mismatch(const sigv4_request_t *r, const sigv4_auth_t *a, const uint8_t *key)
{
    verr_t e = {0};
    assert_int_equal(sigv4_verify(r, a, key, &e), -1);
    assert_string_equal(e.code, "SignatureDoesNotMatch");
    assert_int_equal(e.http_status, 403);
    assert_string_equal(e.message, "The request signature we calculated does not match the "
                        "signature you provided. Check your AWS Secret Access Key and "
                        "signing method.");
}

static void test_verify_tampered(void **state)
{
    (void)state;
    sigv4_auth_t a;
    uint8_t key[SIGV4_KEY_LEN];
    key_for(SECRET, "iam", key);
    assert_int_equal(sigv4_parse_header(IAM_AUTH, "20150830T123600Z", &a, NULL), 0);

    sigv4_request_t r = iam_request();
    r.query = "Action=ListRoles&Version=2010-05-08";
    expect_mismatch(&r, &a, key);
    r = iam_request();
    r.query = "Action=ListUsers&Version=2010-05-08&Marker=x";
    expect_mismatch(&r, &a, key);
    r = iam_request();
    r.method = "POST";
    expect_mismatch(&r, &a, key);
    r = iam_request();
    r.path = "/admin";
    expect_mismatch(&r, &a, key);
    r = iam_request();
    r.payload_hash = "UNSIGNED-PAYLOAD";
    expect_mismatch(&r, &a, key);

    sigv4_header_t h[3];
    memcpy(h, iam_headers, sizeof h);
    h[0].value = "evil.example.com";
    r = iam_request();
    r.headers = h;
    expect_mismatch(&r, &a, key);

    /* the same request with credentials, region or signature changed */
    r = iam_request();
    sigv4_auth_t b = a;
    snprintf(b.region, sizeof b.region, "eu-west-1");
    expect_mismatch(&r, &b, key);
    b = a;
    b.signature[63] = b.signature[63] == '7' ? '8' : '7';
    expect_mismatch(&r, &b, key);
    b = a;
    b.signature[10] = '\0'; /* a prefix of the right signature is not a match */
    expect_mismatch(&r, &b, key);
}

static void test_verify_wrong_key(void **state)
{
    (void)state;
    sigv4_request_t r = iam_request();
    sigv4_auth_t a;
    uint8_t key[SIGV4_KEY_LEN];
    assert_int_equal(sigv4_parse_header(IAM_AUTH, "20150830T123600Z", &a, NULL), 0);
    key_for("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", "iam", key);
    expect_mismatch(&r, &a, key);
    key_for(SECRET, "ec2", key); /* right secret, key of another service */
    expect_mismatch(&r, &a, key);
    sigv4_signing_key(SECRET, "20150831", "us-east-1", "iam", key);
    expect_mismatch(&r, &a, key);
}

static void test_missing_signed_header(void **state)
{
    (void)state;
    sigv4_request_t r = iam_request();
    r.nheaders = 2; /* drop X-Amz-Date */
    verr_t e = {0};
    assert_null(sigv4_canonical_request(&r, "content-type;host;x-amz-date", &e));
    assert_string_equal(e.code, "AuthFailure");
    assert_int_equal(e.http_status, 403);
    assert_non_null(strstr(e.message, "x-amz-date"));

    sigv4_auth_t a;
    uint8_t key[SIGV4_KEY_LEN];
    key_for(SECRET, "iam", key);
    assert_int_equal(sigv4_parse_header(IAM_AUTH, "20150830T123600Z", &a, NULL), 0);
    verr_clear(&e);
    assert_int_equal(sigv4_verify(&r, &a, key, &e), -1);
    assert_string_equal(e.code, "AuthFailure");
}

/* ---- canonicalisation details -------------------------------------------------- */

static void test_headers_trim_join_case(void **state)
{
    (void)state;
    const sigv4_header_t h[] = {
        {"host", "example.com"},
        {"My-Header1", "  value2  "},
        {"MY-HEADER1", "a   b \t c"},
        {"my-header2", "\"a   b   c\""},
        {"my-header3", ""},
    };
    sigv4_request_t r = {.method = "GET", .path = "/", .query = "", .headers = h,
                         .nheaders = ARRAY_LEN(h), .payload_hash = NULL};
    char *c = sigv4_canonical_request(&r, "host;my-header1;my-header2;my-header3", NULL);
    assert_non_null(c);
    assert_string_equal(c, "GET\n/\n\nhost:example.com\nmy-header1:value2,a b c\n"
                           "my-header2:\"a b c\"\nmy-header3:\n\n"
                           "host;my-header1;my-header2;my-header3\n" EMPTY_HASH);
    free(c);

    verr_t e = {0};
    assert_null(sigv4_canonical_request(&r, "host;;my-header2", &e));
    assert_string_equal(e.code, "AuthFailure");
    assert_null(sigv4_canonical_request(&r, "", &e));
    assert_null(sigv4_canonical_request(NULL, "host", &e));
}

/* botocore, GET https://ec2.example.com/a%20b/./c//d/../e?Z=1&a=x%20y&a=b%2Bc&empty with
 * X-Custom: "  a   b\tc  " at 20150830T123600Z: the path is normalised and encoded a
 * second time, the query sorted by name then value. */
static void test_botocore_ec2_vector(void **state)
{
    (void)state;
    const sigv4_header_t h[] = {
        {"X-Custom", "  a   b\tc  "},
        {"X-Amz-Date", "20150830T123600Z"},
        {"Host", "ec2.example.com"},
    };
    sigv4_request_t r = {.method = "GET", .path = "/a%20b/./c//d/../e",
                         .query = "Z=1&a=x%20y&a=b%2Bc&empty", .headers = h,
                         .nheaders = ARRAY_LEN(h), .payload_hash = EMPTY_HASH};
    char *c = sigv4_canonical_request(&r, "host;x-amz-date;x-custom", NULL);
    assert_non_null(c);
    assert_string_equal(c, "GET\n/a%2520b/c/e\nZ=1&a=b%2Bc&a=x%20y&empty=\n"
                           "host:ec2.example.com\nx-amz-date:20150830T123600Z\nx-custom:a b c\n\n"
                           "host;x-amz-date;x-custom\n" EMPTY_HASH);
    free(c);

    sigv4_auth_t a;
    uint8_t key[SIGV4_KEY_LEN];
    verr_t e = {0};
    key_for(SECRET, "ec2", key);
    assert_int_equal(sigv4_parse_header(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-custom, "
        "Signature=f9d70957c3db6a6515dc75b77e3e82e2343750b5155b6a6d789ab13851f77452",
        "20150830T123600Z", &a, &e), 0);
    assert_int_equal(sigv4_verify(&r, &a, key, &e), 0);
}

/* botocore (S3SigV4Auth), PUT https://s3.example.com/bucket/my%20key%2Bplus/caf%C3%A9.txt:
 * the key "my key+plus/café.txt" is signed encoded once. */
static void test_botocore_s3_vector(void **state)
{
    (void)state;
    const sigv4_header_t h[] = {
        {"Host", "s3.example.com"},
        {"X-Amz-Date", "20150830T123600Z"},
        {"X-Amz-Content-SHA256", EMPTY_HASH},
    };
    sigv4_request_t r = {.method = "PUT", .path = "/bucket/my%20key%2Bplus/caf%C3%A9.txt",
                         .query = "", .headers = h, .nheaders = ARRAY_LEN(h),
                         .payload_hash = EMPTY_HASH, .s3 = 1};
    sigv4_auth_t a;
    uint8_t key[SIGV4_KEY_LEN];
    verr_t e = {0};
    key_for(SECRET, "s3", key);
    assert_int_equal(sigv4_parse_header(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
        "Signature=5506c37729346b5a361126a85cdf21dc59e9a2023837065b956bd343bf10c22e",
        "20150830T123600Z", &a, &e), 0);
    assert_int_equal(sigv4_verify(&r, &a, key, &e), 0);

    /* the same key written with lowercase escapes and a raw '+' is the same resource */
    r.path = "/bucket/my%20key+plus/caf%c3%a9.txt";
    assert_int_equal(sigv4_verify(&r, &a, key, &e), 0);
    /* treating the path as non-S3 would double-encode it */
    r.s3 = 0;
    expect_mismatch(&r, &a, key);
}

static void test_s3_path_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", "/"},
        {"/", "/"},
        {"/bucket/my%20key.txt", "/bucket/my%20key.txt"},
        {"/bucket/my key.txt", "/bucket/my%20key.txt"},
        {"/bucket/a+b", "/bucket/a%2Bb"},
        {"/bucket/a%2Bb", "/bucket/a%2Bb"},
        {"/bucket/caf\xc3\xa9", "/bucket/caf%C3%A9"},
        {"/bucket/caf%c3%a9", "/bucket/caf%C3%A9"},
        {"/bucket/%41%7e%2d", "/bucket/A~-"},
        {"/bucket/a%2Fb", "/bucket/a%2Fb"},           /* escaped slash stays escaped */
        {"/bucket//a/./b/../c", "/bucket//a/./b/../c"}, /* S3 keys are not normalised */
        {"/bucket/100%25", "/bucket/100%25"},
        {"/bucket/%E1%88%B4", "/bucket/%E1%88%B4"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        verr_t e = {0};
        char *u = canon_uri(cases[i].in, 1, &e);
        assert_non_null(u);
        assert_string_equal(u, cases[i].out);
        free(u);
    }
    static const char *bad[] = {"/bucket/100%", "/bucket/%4", "/bucket/%zz", "/b/%%41"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        verr_t e = {0};
        assert_null(canon_uri(bad[i], 1, &e));
        assert_string_equal(e.code, "InvalidURI");
        assert_int_equal(e.http_status, 400);
    }
}

/* Non-S3 paths: cases from AWS's SigV4 test suite plus the double encoding. */
static void test_plain_path_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", "/"},
        {"/", "/"},
        {"/./", "/"},
        {"//example//", "/example/"},
        {"/example1/example2/../..", "/"},
        {"/example/..", "/"},
        {"/../../a", "/a"},
        {"/a/b/./c/", "/a/b/c/"},
        {"/example space/", "/example%20space/"},
        {"/\xe1\x88\xb4", "/%E1%88%B4"},
        {"/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
         "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"},
        {"/a%20b", "/a%2520b"},
        {"/a%2Fb", "/a%252Fb"},
        {"/100%", "/100%25"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *u = canon_uri(cases[i].in, 0, NULL);
        assert_non_null(u);
        assert_string_equal(u, cases[i].out);
        free(u);
    }
}

static void test_query_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"Param2=value2&Param1=value1", "Param1=value1&Param2=value2"},
        {"Param1=value2&Param1=Value1", "Param1=Value1&Param1=value2"},
        {"a=b&A=c", "A=c&a=b"},
        {"a=1+2", "a=1%2B2"},
        {"a=x%20y", "a=x%20y"},
        {"a=%7e%41", "a=~A"},
        {"a=%c3%a9", "a=%C3%A9"},
        {"a=\xc3\xa9", "a=%C3%A9"},
        {"a=b=c", "a=b%3Dc"},
        {"acl", "acl="},
        {"&&a=1&", "a=1"},
        {"-._~=-._~", "-._~=-._~"},
        {"b=2&X-Amz-Signature=abc&a=1", "a=1&b=2"},
        {"a=%2F", "a=%2F"},
        {"a=/", "a=%2F"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        verr_t e = {0};
        char *q = canon_query(cases[i].in, &e);
        assert_non_null(q);
        assert_string_equal(q, cases[i].out);
        free(q);
    }
    static const char *bad[] = {"a=%", "a=%4", "a=%g0", "%zz=1"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        verr_t e = {0};
        assert_null(canon_query(bad[i], &e));
        assert_string_equal(e.code, "MalformedQueryString");
        assert_int_equal(e.http_status, 400);
    }
}

/* ---- Authorization header parsing ---------------------------------------------- */

static void test_parse_header_spacing(void **state)
{
    (void)state;
    static const char *ok[] = {
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request,"
        "SignedHeaders=content-type;host;x-amz-date,Signature=" IAM_SIG,
        "  AWS4-HMAC-SHA256   Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request ,\t"
        "SignedHeaders=content-type;host;x-amz-date ,  Signature=" IAM_SIG "  ",
        "AWS4-HMAC-SHA256 Signature=" IAM_SIG ", SignedHeaders=content-type;host;x-amz-date, "
        "Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5D672D79C15B13162D9279B0855CFBA6789A8EDB4C82C400E06B5924A6F2B5D7",
    };
    sigv4_request_t r = iam_request();
    uint8_t key[SIGV4_KEY_LEN];
    key_for(SECRET, "iam", key);
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        sigv4_auth_t a;
        verr_t e = {0};
        assert_int_equal(sigv4_parse_header(ok[i], "20150830T123600Z", &a, &e), 0);
        assert_string_equal(a.signature, IAM_SIG);
        assert_string_equal(a.signed_headers, "content-type;host;x-amz-date");
        assert_int_equal(sigv4_verify(&r, &a, key, &e), 0);
    }
}

static void expect_incomplete(const char *auth)
{
    sigv4_auth_t a;
    verr_t e = {0};
    assert_int_equal(sigv4_parse_header(auth, "20150830T123600Z", &a, &e), -1);
    assert_string_equal(e.code, "IncompleteSignature");
    assert_int_equal(e.http_status, 400);
    assert_true(e.message[0] != '\0');
}

#define CRED "Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request"
#define SH "SignedHeaders=host;x-amz-date"
#define SIG "Signature=" IAM_SIG

static void test_parse_header_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "   ",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        "AWS4-HMAC-SHA512 " CRED ", " SH ", " SIG,
        "AWS4-HMAC-SHA256" CRED ", " SH ", " SIG,
        "aws4-hmac-sha256 " CRED ", " SH ", " SIG,
        "AWS AKIDEXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
        "Bearer eyJhbGciOiJIUzI1NiJ9",
        "AWS4-HMAC-SHA256 " SH ", " SIG,
        "AWS4-HMAC-SHA256 " CRED ", " SIG,
        "AWS4-HMAC-SHA256 " CRED ", " SH,
        "AWS4-HMAC-SHA256 " CRED ", " CRED ", " SH ", " SIG,
        "AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG ", Extra=1",
        "AWS4-HMAC-SHA256 " CRED ", " SH ", Signature",
        "AWS4-HMAC-SHA256 " CRED ", " SH ", Signature=",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam, " SH ", " SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request/x, "
        SH ", " SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws5_request, "
        SH ", " SIG,
        "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/iam/aws4_request, " SH ", " SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083x/us-east-1/iam/aws4_request, "
        SH ", " SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/201508300/us-east-1/iam/aws4_request, "
        SH ", " SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830//iam/aws4_request, " SH ", " SIG,
        "AWS4-HMAC-SHA256 Credential=AKID EXAMPLE/20150830/us-east-1/iam/aws4_request, "
        SH ", " SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=, " SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=;host, " SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;, " SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;;x-amz-date, " SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host name, " SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host:x, " SIG,
        "AWS4-HMAC-SHA256 " CRED ", " SH ", Signature=5d672d79c15b1316",
        "AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG "00",
        "AWS4-HMAC-SHA256 " CRED ", " SH ", "
        "Signature=zd672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        expect_incomplete(bad[i]);
    expect_incomplete(NULL);
}

/* Every prefix of a valid header must be refused, none may crash. */
static void test_parse_header_truncated(void **state)
{
    (void)state;
    const char *full = IAM_AUTH;
    size_t n = strlen(full);
    for (size_t len = 0; len < n; len++) {
        char *t = strndup(full, len);
        sigv4_auth_t a;
        verr_t e = {0};
        int rc = sigv4_parse_header(t, "20150830T123600Z", &a, &e);
        free(t);
        /* cutting only the last hex digit still must not parse */
        assert_int_equal(rc, -1);
        assert_string_equal(e.code, "IncompleteSignature");
    }
}

static void test_parse_header_long_and_garbage(void **state)
{
    (void)state;
    size_t big = 200000;
    char *s = malloc(big + 1);
    assert_non_null(s);

    memset(s, 'A', big);
    s[big] = '\0';
    expect_incomplete(s);

    /* an access key, region, service and header list longer than their fields */
    char *long_fields[4];
    char *pad = strndup(s, 3000);
    long_fields[0] = xasprintf("AWS4-HMAC-SHA256 Credential=%s/20150830/us-east-1/iam/"
                               "aws4_request, " SH ", " SIG, pad);
    long_fields[1] = xasprintf("AWS4-HMAC-SHA256 Credential=AK/20150830/%s/iam/aws4_request, "
                               SH ", " SIG, pad);
    long_fields[2] = xasprintf("AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/%s/"
                               "aws4_request, " SH ", " SIG, pad);
    long_fields[3] = xasprintf("AWS4-HMAC-SHA256 " CRED ", SignedHeaders=%s, " SIG, pad);
    for (int i = 0; i < 4; i++) {
        expect_incomplete(long_fields[i]);
        free(long_fields[i]);
    }
    free(pad);

    /* a valid prefix followed by a flood of commas and blanks */
    size_t pre = strlen(IAM_AUTH);
    memcpy(s, IAM_AUTH, pre);
    for (size_t i = pre; i < big; i++)
        s[i] = (i & 1) ? ',' : ' ';
    sigv4_auth_t a;
    verr_t e = {0};
    assert_int_equal(sigv4_parse_header(s, "20150830T123600Z", &a, &e), 0);

    /* random bytes, seeded so a failure can be replayed */
    srand(12345);
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(rand() % 300);
        size_t off = 0;
        if (round & 1) { /* half of them behind a valid algorithm */
            memcpy(s, "AWS4-HMAC-SHA256 ", 17);
            off = 17;
        }
        for (size_t i = off; i < off + len; i++)
            s[i] = (char)(1 + rand() % 255);
        s[off + len] = '\0';
        verr_clear(&e);
        assert_int_equal(sigv4_parse_header(s, "20150830T123600Z", &a, &e), -1);
        assert_true(e.code[0] != '\0');
    }
    free(s);
}

static void test_parse_header_dates(void **state)
{
    (void)state;
    sigv4_auth_t a;
    verr_t e = {0};
    static const char *bad_dates[] = {
        "", "20150830", "20150830T123600", "20150830T123600Z0", "20150830 123600Z",
        "2015-08-30T12:36:00Z", "20150230T123600Z", "20151330T123600Z", "20150830T243600Z",
        "20150830T126000Z", "2015O830T123600Z", "Sun, 30 Aug 2015 12:36:00 PST",
        "Sun, 30 Foo 2015 12:36:00 GMT", "Sun, ", "Sun, 3",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad_dates); i++) {
        verr_clear(&e);
        assert_int_equal(sigv4_parse_header(IAM_AUTH, bad_dates[i], &a, &e), -1);
        assert_string_equal(e.code, "IncompleteSignature");
        assert_int_equal(e.http_status, 400);
    }
    verr_clear(&e);
    assert_int_equal(sigv4_parse_header(IAM_AUTH, NULL, &a, &e), -1);
    assert_string_equal(e.code, "IncompleteSignature");

    /* a valid time on another day than the credential scope */
    verr_clear(&e);
    assert_int_equal(sigv4_parse_header(IAM_AUTH, "20150831T000000Z", &a, &e), -1);
    assert_string_equal(e.code, "SignatureDoesNotMatch");
    assert_int_equal(e.http_status, 403);

    /* the Date header instead of X-Amz-Date */
    assert_int_equal(sigv4_parse_header(IAM_AUTH, "Sun, 30 Aug 2015 12:36:00 GMT", &a, &e), 0);
    assert_string_equal(a.amz_date, "20150830T123600Z");
    assert_int_equal(sigv4_parse_header(IAM_AUTH, "30 Aug 2015 02:03:04 GMT", &a, &e), 0);
    assert_string_equal(a.amz_date, "20150830T020304Z");
}

/* ---- time window --------------------------------------------------------------- */

static void test_check_time_header(void **state)
{
    (void)state;
    sigv4_auth_t a;
    verr_t e = {0};
    assert_int_equal(sigv4_parse_header(IAM_AUTH, "20150830T123600Z", &a, NULL), 0);
    assert_int_equal(sigv4_check_time(&a, T0, 300, &e), 0);
    assert_int_equal(sigv4_check_time(&a, T0 + 300, 300, &e), 0);
    assert_int_equal(sigv4_check_time(&a, T0 - 300, 300, &e), 0);

    assert_int_equal(sigv4_check_time(&a, T0 + 301, 300, &e), -1);
    assert_string_equal(e.code, "RequestExpired");
    assert_int_equal(e.http_status, 400);
    assert_non_null(strstr(e.message, "20150830T123600Z"));
    assert_non_null(strstr(e.message, "20150830T124101Z"));

    verr_clear(&e);
    assert_int_equal(sigv4_check_time(&a, T0 - 301, 300, &e), -1);
    assert_string_equal(e.code, "RequestExpired");
    assert_int_equal(e.http_status, 400);
    assert_non_null(strstr(e.message, "20150830T123059Z"));

    verr_clear(&e);
    assert_int_equal(sigv4_check_time(&a, T0 + 1, -5, &e), -1); /* negative skew = none */
    a.amz_date[0] = 'x';
    assert_int_equal(sigv4_check_time(&a, T0, 300, &e), -1);
    assert_int_equal(sigv4_check_time(NULL, T0, 300, &e), -1);
}

static void test_check_time_presigned(void **state)
{
    (void)state;
    sigv4_auth_t a = {.amz_date = "20150830T123600Z", .date = "20150830", .expires = 3600,
                      .presigned = 1};
    verr_t e = {0};
    assert_int_equal(sigv4_check_time(&a, T0, 900, &e), 0);
    assert_int_equal(sigv4_check_time(&a, T0 + 3600, 900, &e), 0);
    assert_int_equal(sigv4_check_time(&a, T0 + 3601, 900, &e), -1);
    assert_string_equal(e.code, "RequestExpired");
    assert_int_equal(e.http_status, 403);
    assert_string_equal(e.message, "Request has expired");

    assert_int_equal(sigv4_check_time(&a, T0 - 900, 900, &e), 0);
    verr_clear(&e);
    assert_int_equal(sigv4_check_time(&a, T0 - 901, 900, &e), -1);
    assert_string_equal(e.code, "RequestExpired");

    a.expires = 604801;
    assert_int_equal(sigv4_check_time(&a, T0, 900, &e), -1);
    a.expires = 0;
    assert_int_equal(sigv4_check_time(&a, T0, 900, &e), -1);
}

/* ---- presigned ----------------------------------------------------------------- */

#define BOTO_PRESIGNED                                                                    \
    "versionId=1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830" \
    "%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600"      \
    "&X-Amz-SignedHeaders=host&X-Amz-Signature="                                          \
    "c267c00046d89e90eebe44a75b5f8f94049f90c6d942f1e70a30fde5635c7d62"

static const sigv4_header_t s3_host[] = {{"Host", "s3.example.com"}};

/* A URL from botocore's generate_presigned_url for GET /bucket/obj?versionId=1. */
static void test_presigned_botocore(void **state)
{
    (void)state;
    sigv4_auth_t a;
    verr_t e = {0};
    uint8_t key[SIGV4_KEY_LEN];
    key_for(SECRET, "s3", key);
    assert_int_equal(sigv4_parse_query(BOTO_PRESIGNED, &a, &e), 0);
    assert_int_equal(a.presigned, 1);
    assert_int_equal(a.expires, 3600);
    assert_string_equal(a.access_key, "AKIDEXAMPLE");
    assert_string_equal(a.service, "s3");
    assert_string_equal(a.signed_headers, "host");
    assert_string_equal(a.amz_date, "20150830T123600Z");

    sigv4_request_t r = {.method = "GET", .path = "/bucket/obj", .query = BOTO_PRESIGNED,
                         .headers = s3_host, .nheaders = 1,
                         .payload_hash = "UNSIGNED-PAYLOAD", .s3 = 1};
    assert_int_equal(sigv4_verify(&r, &a, key, &e), 0);
    assert_int_equal(sigv4_check_time(&a, T0 + 60, 900, &e), 0);
    assert_int_equal(sigv4_check_time(&a, T0 + 3601, 900, &e), -1);

    /* a longer life: parses, but is not what was signed */
    char *q = strdup(BOTO_PRESIGNED);
    memcpy(strstr(q, "X-Amz-Expires=3600"), "X-Amz-Expires=3601", 18);
    assert_int_equal(sigv4_parse_query(q, &a, &e), 0);
    r.query = q;
    expect_mismatch(&r, &a, key);
    free(q);
}

/* Sign a presigned URL with the module itself, then check it and its tampered forms. */
static void test_presigned_roundtrip(void **state)
{
    (void)state;
    const char *base = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                       "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fs3%2Faws4_request"
                       "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=86400"
                       "&X-Amz-SignedHeaders=host&response-content-type=text%2Fplain";
    sigv4_request_t r = {.method = "GET", .path = "/bucket/dir/a%20file+1.txt", .query = base,
                         .headers = s3_host, .nheaders = 1,
                         .payload_hash = "UNSIGNED-PAYLOAD", .s3 = 1};
    uint8_t key[SIGV4_KEY_LEN];
    char sig[65];
    verr_t e = {0};
    key_for(SECRET, "s3", key);
    char *c = sigv4_canonical_request(&r, "host", &e);
    assert_non_null(c);
    char *sts = sigv4_string_to_sign("20150830T123600Z", "20150830", "us-east-1", "s3", c);
    sigv4_sign(key, sts, sig);
    free(c);
    free(sts);

    char *q = xasprintf("%s&X-Amz-Signature=%s", base, sig);
    sigv4_auth_t a;
    assert_int_equal(sigv4_parse_query(q, &a, &e), 0);
    assert_int_equal(a.expires, 86400);
    assert_string_equal(a.signature, sig);
    r.query = q;
    assert_int_equal(sigv4_verify(&r, &a, key, &e), 0);
    assert_int_equal(sigv4_check_time(&a, T0 + 86400, 900, &e), 0);
    assert_int_equal(sigv4_check_time(&a, T0 + 86401, 900, &e), -1);
    free(q);

    /* X-Amz-Expires stretched to a week */
    q = xasprintf("%s&X-Amz-Signature=%s", base, sig);
    memcpy(strstr(q, "X-Amz-Expires=86400"), "X-Amz-Expires=99999", 19);
    assert_int_equal(sigv4_parse_query(q, &a, &e), 0);
    r.query = q;
    expect_mismatch(&r, &a, key);
    free(q);

    /* another object with the same signature */
    q = xasprintf("%s&X-Amz-Signature=%s", base, sig);
    r.query = q;
    r.path = "/bucket/dir/other.txt";
    assert_int_equal(sigv4_parse_query(q, &a, &e), 0);
    expect_mismatch(&r, &a, key);
    free(q);

    /* an extra parameter smuggled under an encoded X-Amz-Signature name */
    q = xasprintf("%s&X-Amz-Signature=%s&X-Amz-Signatur%%65=x", base, sig);
    assert_int_equal(sigv4_parse_query(q, &a, &e), -1);
    assert_string_equal(e.code, "AuthFailure");
    free(q);
}

static void expect_query_fail(const char *q, const char *needle)
{
    sigv4_auth_t a;
    verr_t e = {0};
    assert_int_equal(sigv4_parse_query(q, &a, &e), -1);
    assert_string_equal(e.code, "AuthFailure");
    assert_int_equal(e.http_status, 403);
    if (needle && !strstr(e.message, needle))
        fail_msg("message '%s' does not mention '%s'", e.message, needle);
}

static void test_presigned_malformed(void **state)
{
    (void)state;
    static const char *const params[] = {
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Credential=AK%2F20150830%2Fus-east-1%2Fs3%2Faws4_request",
        "X-Amz-Date=20150830T123600Z",
        "X-Amz-Expires=60",
        "X-Amz-SignedHeaders=host",
        ("X-Amz-Signature=" IAM_SIG),
    };
    static const char *const names[] = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                        "X-Amz-Expires", "X-Amz-SignedHeaders",
                                        "X-Amz-Signature"};
    /* each parameter missing in turn */
    for (size_t skip = 0; skip < ARRAY_LEN(params); skip++) {
        char q[1024] = "";
        for (size_t i = 0; i < ARRAY_LEN(params); i++) {
            if (i == skip)
                continue;
            strncat(q, "&", sizeof q - strlen(q) - 1);
            strncat(q, params[i], sizeof q - strlen(q) - 1);
        }
        expect_query_fail(q, names[skip]);
    }
    expect_query_fail("", NULL);
    expect_query_fail(NULL, NULL);

    /* the full set parses */
    char good[1024] = "";
    for (size_t i = 0; i < ARRAY_LEN(params); i++) {
        strncat(good, params[i], sizeof good - strlen(good) - 1);
        strncat(good, "&", sizeof good - strlen(good) - 1);
    }
    sigv4_auth_t a;
    assert_int_equal(sigv4_parse_query(good, &a, NULL), 0);
    assert_int_equal(a.expires, 60);

    static const struct {
        const char *from, *to;
    } subst[] = {
        {"X-Amz-Expires=60", "X-Amz-Expires=0"},
        {"X-Amz-Expires=60", "X-Amz-Expires=604801"},
        {"X-Amz-Expires=60", "X-Amz-Expires=-1"},
        {"X-Amz-Expires=60", "X-Amz-Expires=6O"},
        {"X-Amz-Expires=60", "X-Amz-Expires=99999999999999999999999"},
        {"X-Amz-Expires=60", "X-Amz-Expires="},
        {"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"},
        {"X-Amz-Date=20150830T123600Z", "X-Amz-Date=Sun%2C%2030%20Aug%202015%2012%3A36%3A00%20GMT"},
        {"X-Amz-Date=20150830T123600Z", "X-Amz-Date=20150830T123600Z%00"},
        {"X-Amz-Credential=AK%2F", "X-Amz-Credential=AK%Z"},
        {"X-Amz-Credential=AK%2F20150830", "X-Amz-Credential=AK%2F2015083"},
        {"X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=host%3B"},
        {"X-Amz-Signature=5d", "X-Amz-Signature=xd"},
    };
    for (size_t i = 0; i < ARRAY_LEN(subst); i++) {
        char *at = strstr(good, subst[i].from);
        assert_non_null(at);
        char *q = xasprintf("%.*s%s%s", (int)(at - good), good, subst[i].to,
                            at + strlen(subst[i].from));
        expect_query_fail(q, NULL);
        free(q);
    }
    /* a parameter given twice is ambiguous */
    char *q = xasprintf("%sX-Amz-Expires=60", good);
    expect_query_fail(q, "X-Amz-Expires");
    free(q);

    /* the credential's day must be the X-Amz-Date day */
    q = xasprintf("%sX", good);
    char *d = strstr(q, "X-Amz-Date=20150830");
    memcpy(d, "X-Amz-Date=20150831", 19);
    verr_t e = {0};
    assert_int_equal(sigv4_parse_query(q, &a, &e), -1);
    assert_string_equal(e.code, "SignatureDoesNotMatch");
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_aws_example_canonical_request),
        cmocka_unit_test(test_aws_example_signing_key),
        cmocka_unit_test(test_aws_example_signature),
        cmocka_unit_test(test_aws_example_parse_header),
        cmocka_unit_test(test_aws_example_verify),
        cmocka_unit_test(test_verify_tampered),
        cmocka_unit_test(test_verify_wrong_key),
        cmocka_unit_test(test_missing_signed_header),
        cmocka_unit_test(test_headers_trim_join_case),
        cmocka_unit_test(test_botocore_ec2_vector),
        cmocka_unit_test(test_botocore_s3_vector),
        cmocka_unit_test(test_s3_path_canonical),
        cmocka_unit_test(test_plain_path_canonical),
        cmocka_unit_test(test_query_canonical),
        cmocka_unit_test(test_parse_header_spacing),
        cmocka_unit_test(test_parse_header_malformed),
        cmocka_unit_test(test_parse_header_truncated),
        cmocka_unit_test(test_parse_header_long_and_garbage),
        cmocka_unit_test(test_parse_header_dates),
        cmocka_unit_test(test_check_time_header),
        cmocka_unit_test(test_check_time_presigned),
        cmocka_unit_test(test_presigned_botocore),
        cmocka_unit_test(test_presigned_roundtrip),
        cmocka_unit_test(test_presigned_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
